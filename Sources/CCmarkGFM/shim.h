#ifndef LONGHAUL_CCMARKGFM_SHIM_H
#define LONGHAUL_CCMARKGFM_SHIM_H
#include <stdlib.h>
#include <cmark-gfm.h>
#include <cmark-gfm-core-extensions.h>

// cmark-gfm has no variadic functions, but its option flags are macros that Swift imports as plain Int32
// constants, and its node types are an enum whose values collide with the preprocessor aliases: these typed
// wrappers keep the Markdown module's calls readable and pin each option it uses.

/// The parse and render options Longhaul uses: safe mode (no CMARK_OPT_UNSAFE: raw HTML is never passed through),
/// no source positions, no smart punctuation; a line break inside a paragraph stays a line break (`<br />`), as in
/// GitHub comments and chat answers.
static inline int ccmark_options(void) { return CMARK_OPT_DEFAULT | CMARK_OPT_HARDBREAKS; }

/// Registers the core GFM extensions. Not thread-safe in cmark-gfm (a static flag): call once, before any parser
/// exists (the Markdown module does it from a Swift `static let`, which runs exactly once).
static inline void ccmark_register_extensions(void) { cmark_gfm_core_extensions_ensure_registered(); }

/// Frees a string cmark-gfm allocated with the default allocator (the rendered HTML).
static inline void ccmark_free_string(char *s) { free(s); }

#endif
