private import CCmarkGFM
import Locking

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
        return withLinkRel(UnsafeRawBufferPointer(start: rendered, count: strlen(rendered)))
    }

    /// The rendered HTML with `rel` added to every anchor, right after its `href` value: `<a href="…" rel="…"`.
    ///
    /// Only anchors write `<a href="` in cmark's output (text, code and attributes are escaped, raw HTML became
    /// text), and an `href` value is escaped, so it holds no `"`: its end is the next quote.
    static func withLinkRel(_ html: UnsafeRawBufferPointer) -> String {
        let opening = Array("<a href=\"".utf8)
        let rel = Array(" rel=\"\(MarkdownRenderer.linkRel)\"".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(html.count + 64)
        var position = 0
        while let start = firstRange(of: opening, in: html, from: position),
            let quote = html[(start + opening.count)...].firstIndex(of: UInt8(ascii: "\""))
        {
            output.append(contentsOf: html[position...quote])
            output.append(contentsOf: rel)
            position = quote + 1
        }
        output.append(contentsOf: html[position...])
        return String(decoding: output, as: UTF8.self)
    }

    private static func firstRange(of needle: [UInt8], in haystack: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            guard let found = haystack[index...last].firstIndex(of: needle[0]) else { return nil }
            if haystack[found..<(found + needle.count)].elementsEqual(needle) { return found }
            index = found + 1
        }
        return nil
    }
}
