private import CCmarkGFM
import Locking

/// The cmark-gfm calls: parse, make the tree safe, render. Every handle is freed before returning.
enum CmarkDocument {
    /// The GFM extensions attached to every parser. They are created once by registration and never change
    /// afterwards; parsers only read them.
    private struct Extensions: @unchecked Sendable {
        // @unchecked: pointers to cmark-gfm's registry entries, immutable after registration, shared read-only.
        let all: [OpaquePointer]
    }

    /// Registers cmark-gfm's core extensions exactly once (its own guard is a plain static flag, not thread-safe)
    /// and looks up the ones used. The autolink extension is left out on purpose: in 0.29.0.gfm.6 it takes
    /// quadratic time on input like `www._` repeated (73 s for 250 KB, measured) and has an out-of-bounds read
    /// (CVE-2023-22485); ``Autolinker`` does its work instead, in linear time.
    private static let extensions: Extensions = {
        ccmark_register_extensions()
        let names = ["table", "strikethrough", "tasklist"]
        return Extensions(
            all: names.map { name in
                guard let found = cmark_find_syntax_extension(name) else {
                    fatalError("cmark-gfm has no \(name) extension: is libcmark-gfm-extensions installed?")
                }
                return found
            })
    }()

    /// Serializes parsing. cmark-gfm 0.29.0.gfm.6 keeps its table of special inline characters in a global array
    /// that every parse with extensions writes to (adds, then removes the extensions' characters; see
    /// github/cmark-gfm#176), so two parses at once race. Parsing a 20,000-word answer takes a few milliseconds;
    /// the tree work and the HTML rendering run outside the lock. It guards a count of parses rather than `Void`:
    /// ThreadSanitizer reports accesses to a zero-sized value under the lock as races.
    private static let parseLock = LockedValue<Int>(0)

    /// Parses, makes the tree safe and renders it.
    /// - Parameters:
    ///   - markdown: the Markdown text.
    ///   - headingOffset: levels to move headings down.
    /// - Returns: the HTML, or `nil` if cmark-gfm failed to allocate.
    static func renderHTML(_ markdown: String, headingOffset: Int) -> String? {
        let extensions = Self.extensions
        let options = ccmark_options()
        guard let parser = cmark_parser_new(options) else { return nil }
        defer { cmark_parser_free(parser) }
        for extensionHandle in extensions.all {
            guard cmark_parser_attach_syntax_extension(parser, extensionHandle) != 0 else { return nil }
        }
        var text = markdown
        let document: OpaquePointer? = parseLock.withLock { parses in
            parses &+= 1
            text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    if let base = chars.baseAddress { cmark_parser_feed(parser, base, chars.count) }
                }
            }
            return cmark_parser_finish(parser)
        }
        guard let document else { return nil }
        defer { cmark_node_free(document) }

        cmark_consolidate_text_nodes(document)
        SafeTree.apply(to: document, headingOffset: headingOffset)

        guard let rendered = cmark_render_html(document, options, cmark_parser_get_syntax_extensions(parser)) else {
            return nil
        }
        defer { ccmark_free_string(rendered) }
        return String(cString: rendered)
    }
}
