/// A fragment of HTML that is safe to send to a browser.
///
/// Text interpolated into an `HTML` literal is escaped; only the literal segments written in source code, other
/// `HTML` values, and ``HTML/init(unsafeRaw:)`` pass through unchanged. That makes the unsafe path greppable:
///
/// ```swift
/// let reply = "<script>alert(1)</script>"
/// let page: HTML = "<p class=\"reply\">\(reply)</p>"   // <p class="reply">&lt;script&gt;…</p>
/// ```
public struct HTML: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The markup, ready to be written to a response body.
    public private(set) var rendered: String

    /// Wraps markup that is trusted as it is. Never pass text that came from a user or a model.
    /// - Parameter unsafeRaw: markup to send without escaping.
    public init(unsafeRaw: String) {
        self.rendered = unsafeRaw
    }

    /// An empty fragment.
    public static let empty = HTML(unsafeRaw: "")

    public init(stringLiteral value: String) {
        self.rendered = value
    }

    public init(stringInterpolation: StringInterpolation) {
        self.rendered = stringInterpolation.rendered
    }

    public var description: String { rendered }

    /// Joins fragments, with an optional trusted separator.
    /// - Parameters:
    ///   - fragments: the fragments, in order.
    ///   - separator: markup placed between two fragments.
    /// - Returns: the joined fragment.
    public static func joined(_ fragments: [HTML], separator: String = "") -> HTML {
        HTML(unsafeRaw: fragments.map(\.rendered).joined(separator: separator))
    }

    /// Interpolation that escapes every value that is not already `HTML`.
    public struct StringInterpolation: StringInterpolationProtocol {
        var rendered = ""

        public init(literalCapacity: Int, interpolationCount: Int) {
            rendered.reserveCapacity(literalCapacity + interpolationCount * 16)
        }

        public mutating func appendLiteral(_ literal: String) {
            rendered += literal
        }

        /// Appends text, escaped for element content and quoted attribute values.
        public mutating func appendInterpolation(_ text: String) {
            HTML.appendEscaped(text, to: &rendered)
        }

        /// Appends a number or any other value by its description, escaped.
        public mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) {
            HTML.appendEscaped(value.description, to: &rendered)
        }

        /// Appends a trusted fragment unchanged.
        public mutating func appendInterpolation(_ html: HTML) {
            rendered += html.rendered
        }

        /// Appends trusted fragments unchanged, one after the other.
        public mutating func appendInterpolation(_ fragments: [HTML]) {
            for fragment in fragments { rendered += fragment.rendered }
        }
    }

    /// Escapes text for use in element content and in single- or double-quoted attribute values.
    /// - Parameter text: untrusted text.
    /// - Returns: the text with `& < > " '` replaced by character references.
    public static func escape(_ text: String) -> String {
        var out = ""
        appendEscaped(text, to: &out)
        return out
    }

    static func appendEscaped(_ text: String, to out: inout String) {
        var contiguous = text
        contiguous.withUTF8 { appendEscaped($0, to: &out, original: text) }
    }

    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to out: inout String, original: String) {
        // Fast path: most text needs no escaping, and scanning the UTF-8 bytes in place is far cheaper than going
        // through String.UTF8View or per-Character work.
        guard let first = utf8.firstIndex(where: needsEscaping) else {
            out += original
            return
        }
        // Byte by byte: the five characters are ASCII, so every other byte (UTF-8 sequences included) is copied as is;
        // appending bytes to an array is several times faster than appending scalars to a String (a 128 KB answer's
        // Markdown source is escaped into every finished fragment).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count + utf8.count / 8 + 16)
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[..<first]))
        for byte in UnsafeBufferPointer(rebasing: utf8[first...]) {
            switch byte {
            case 0x26: bytes.append(contentsOf: "&amp;".utf8)
            case 0x3C: bytes.append(contentsOf: "&lt;".utf8)
            case 0x3E: bytes.append(contentsOf: "&gt;".utf8)
            case 0x22: bytes.append(contentsOf: "&quot;".utf8)
            case 0x27: bytes.append(contentsOf: "&#39;".utf8)
            default: bytes.append(byte)
            }
        }
        out += String(decoding: bytes, as: UTF8.self)
    }

    /// `& < > " '`: the bytes ``escape(_:)`` replaces.
    @inline(__always)
    private static func needsEscaping(_ byte: UInt8) -> Bool {
        byte == 0x26 || byte == 0x3C || byte == 0x3E || byte == 0x22 || byte == 0x27
    }
}
