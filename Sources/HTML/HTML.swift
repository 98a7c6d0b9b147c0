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
    /// The markup's UTF-8 bytes, ready to be written to a response body as they are (no copy, no re-encoding).
    public private(set) var utf8: [UInt8]

    /// The markup as a String.
    public var rendered: String { String(decoding: utf8, as: UTF8.self) }

    /// Wraps markup that is trusted as it is. Never pass text that came from a user or a model.
    /// - Parameter unsafeRaw: markup to send without escaping.
    public init(unsafeRaw: String) {
        self.utf8 = Array(unsafeRaw.utf8)
    }

    /// An empty fragment.
    public static let empty = HTML(unsafeRaw: "")

    public init(stringLiteral value: String) {
        self.utf8 = Array(value.utf8)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.utf8 = stringInterpolation.bytes
    }

    public var description: String { rendered }

    /// Joins fragments, with an optional trusted separator.
    /// - Parameters:
    ///   - fragments: the fragments, in order.
    ///   - separator: markup placed between two fragments.
    /// - Returns: the joined fragment.
    public static func joined(_ fragments: [HTML], separator: String = "") -> HTML {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fragments.reduce(0) { $0 + $1.utf8.count + separator.utf8.count })
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { append(separator, to: &bytes) }
            bytes.append(contentsOf: fragment.utf8)
        }
        return HTML(bytes: bytes)
    }

    private init(bytes: [UInt8]) {
        self.utf8 = bytes
    }

    /// Bytes a ``Writer`` produced (escaped where they came from text).
    init(writtenBytes: [UInt8]) {
        self.utf8 = writtenBytes
    }

    /// Interpolation that escapes every value that is not already `HTML`. It renders into one byte buffer (appending
    /// bytes is cheaper than growing a String piece by piece), which the `HTML` keeps as it is.
    public struct StringInterpolation: StringInterpolationProtocol {
        var bytes: [UInt8] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            bytes.reserveCapacity(literalCapacity + interpolationCount * 16)
        }

        public mutating func appendLiteral(_ literal: String) {
            HTML.append(literal, to: &bytes)
        }

        /// Appends text, escaped for element content and quoted attribute values.
        public mutating func appendInterpolation(_ text: String) {
            HTML.appendEscaped(text, to: &bytes)
        }

        /// Appends a number or any other value by its description, escaped.
        public mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) {
            HTML.appendEscaped(value.description, to: &bytes)
        }

        /// Appends a trusted fragment unchanged.
        public mutating func appendInterpolation(_ html: HTML) {
            bytes.append(contentsOf: html.utf8)
        }

        /// Appends trusted fragments unchanged, one after the other.
        public mutating func appendInterpolation(_ fragments: [HTML]) {
            for fragment in fragments { bytes.append(contentsOf: fragment.utf8) }
        }
    }

    /// Escapes text for use in element content and in single- or double-quoted attribute values.
    /// - Parameter text: untrusted text.
    /// - Returns: the text with `& < > " '` replaced by character references.
    public static func escape(_ text: String) -> String {
        var bytes: [UInt8] = []
        appendEscaped(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends a string's UTF-8 bytes as they are.
    static func append(_ text: String, to bytes: inout [UInt8]) {
        var contiguous = text
        contiguous.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// Appends a string's UTF-8 bytes with `& < > " '` replaced by character references, as ``escape(_:)`` does,
    /// without making a string.
    /// - Parameters:
    ///   - text: untrusted text.
    ///   - bytes: the buffer to append to.
    public static func appendEscaped(_ text: String, to bytes: inout [UInt8]) {
        var contiguous = text
        contiguous.withUTF8 { utf8 in
            // Scanning the UTF-8 bytes in place is far cheaper than going through String.UTF8View or Characters. The
            // five characters are ASCII, so every other byte (UTF-8 sequences included) is copied as is.
            var clean = 0
            for index in utf8.indices where needsEscaping(utf8[index]) {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
                switch utf8[index] {
                case 0x26: bytes.append(contentsOf: "&amp;".utf8)
                case 0x3C: bytes.append(contentsOf: "&lt;".utf8)
                case 0x3E: bytes.append(contentsOf: "&gt;".utf8)
                case 0x22: bytes.append(contentsOf: "&quot;".utf8)
                default: bytes.append(contentsOf: "&#39;".utf8)
                }
                clean = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean...]))
        }
    }

    /// `& < > " '`: the bytes ``escape(_:)`` replaces.
    @inline(__always)
    static func needsEscaping(_ byte: UInt8) -> Bool {
        byte == 0x26 || byte == 0x3C || byte == 0x3E || byte == 0x22 || byte == 0x27
    }
}
