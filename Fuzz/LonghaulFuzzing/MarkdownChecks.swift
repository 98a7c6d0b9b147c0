import HTML
import Markdown

/// `MarkdownRenderer` over untrusted Markdown (what a model, or a prompt injection, may write).
///
/// Invariants: every `<` of the output opens one of the elements a rendered answer may hold, with only known
/// attributes, each double-quoted; no `href` has a scheme other than `http`, `https` or `mailto`; every link has
/// `rel="noopener noreferrer nofollow"`; no `style` or event handler anywhere; and rendering the same input twice
/// gives the same HTML.
enum MarkdownChecks {
    static let renderer = MarkdownRenderer()
    static let elements: Set<String> = [
        "p", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "del", "code", "pre", "a", "blockquote", "hr",
        "br", "table", "thead", "tbody", "tr", "th", "td", "input",
    ]
    static let attributes: Set<String> = [
        "href", "rel", "title", "class", "align", "start", "type", "checked", "disabled",
    ]

    static func run(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        let target = FuzzTarget.markdown
        let markdown = String(decoding: input, as: UTF8.self)
        let html = renderer.render(markdown).rendered
        try expect(renderer.render(markdown).rendered == html, target, "two renderings differ")
        let bytes = Array(html.utf8)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "<") else {
                index += 1
                continue
            }
            guard let end = bytes[index...].firstIndex(of: UInt8(ascii: ">")) else {
                throw InvariantViolation(target, "an unclosed tag in \(show(html))")
            }
            try checkTag(String(decoding: bytes[(index + 1)..<end], as: UTF8.self), in: html)
            index = end + 1
        }
    }

    /// One tag's inside: `name attr="value" …`, `/name`, or `name … /`. Scanned by Unicode scalar, not by
    /// Character: a combining mark right after a quote (`title="\u{05AD}"`) would join it into one Character.
    private static func checkTag(_ tag: String, in html: String) throws(InvariantViolation) {
        let target = FuzzTarget.markdown
        func text(_ scalars: Substring.UnicodeScalarView) -> String { String(String.UnicodeScalarView(scalars)) }
        var rest = Substring(tag).unicodeScalars
        if rest.first == "/" { rest = rest.dropFirst() }
        let name = text(rest.prefix { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        try expect(elements.contains(name), target, "element <\(name)> in \(show(html))")
        rest = rest.dropFirst(name.unicodeScalars.count)
        var linkRel = ""
        while true {
            rest = rest.drop { $0 == " " }
            if rest.isEmpty || text(rest) == "/" { break }
            let attribute = text(rest.prefix { $0 != "=" && $0 != " " })
            try expect(attributes.contains(attribute), target, "attribute \(attribute) in \(show(html))")
            rest = rest.dropFirst(attribute.unicodeScalars.count)
            guard rest.starts(with: "=\"".unicodeScalars) else {
                throw InvariantViolation(target, "attribute \(attribute) without a quoted value in \(show(html))")
            }
            rest = rest.dropFirst(2)
            guard let close = rest.firstIndex(of: "\"") else {
                throw InvariantViolation(target, "an unterminated attribute value in \(show(html))")
            }
            let value = text(rest[..<close])
            rest = rest[rest.index(after: close)...]
            if attribute == "rel" { linkRel = value }
            if attribute == "href" {
                let lowered = value.lowercased()
                let schemeEnd = lowered.firstIndex { ":/?#".contains($0) }
                if let schemeEnd, lowered[schemeEnd] == ":" {
                    let scheme = String(lowered[..<schemeEnd])
                    try expect(["http", "https", "mailto"].contains(scheme), target, "href scheme \(scheme)")
                }
            }
        }
        if name == "a" && !tag.hasPrefix("/") {
            try expect(linkRel == MarkdownRenderer.linkRel, target, "a link without rel in \(show(html))")
        }
    }
}
