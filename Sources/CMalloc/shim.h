#ifndef LONGHAUL_CMALLOC_SHIM_H
#define LONGHAUL_CMALLOC_SHIM_H
// glibc's allocator controls (mallopt, malloc_trim, mallinfo2): <malloc.h>, which the Glibc module does not import.
// Elsewhere (macOS) the module is empty and its callers compile their glibc branch out.
#if defined(__linux__) && __has_include(<malloc.h>)
#include <malloc.h>
#endif
#endif
