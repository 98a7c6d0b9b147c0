import Glibc
import StandardExtensions

/// Answers the requests it recognises the moment they are accepted: from the parameters where libfcgi read them,
/// into one buffer on the accept thread's stack, sent to libfcgi in one write. No request or response value is
/// made, nothing is allocated, nothing is retained.
///
/// It exists for the request every open page repeats each second (a pending task's fragment), where the work of
/// the general path (taking the parameters, routing, the `Request` and `FastCGIResponse` values) costs as much as
/// the answer. A responder must answer exactly as the general path would, or decline without side effects: the
/// request then takes the general path, whose answer is the reference (tests compare the two). A class: the accept
/// loop holds it by reference, not as an existential copied on every request.
package protocol QuickResponder: AnyObject, Sendable {
    /// Answers `request` into `answer` (``QuickAnswer/complete(status:headers:body:)``) and returns `true`, or
    /// returns `false` having changed nothing.
    /// - Parameters:
    ///   - request: the request's parameters, valid only during the call.
    ///   - answer: where the whole answer is written.
    func respond(to request: borrowing FastCGIRequestInPlace, into answer: inout QuickAnswer) -> Bool
}

/// Where the well-known parameters of a libfcgi environment are, and how many entries it has: found in one pass
/// over the environment where it lies, before anything takes it.
struct ParameterScan {
    let count: Int
    let wellKnown: FastCGIParameters.WellKnownEntries

    /// - Parameter entries: the request's `envp`, ending in a null pointer.
    init(_ entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) {
        var wellKnown = FastCGIParameters.WellKnownEntries()
        var index = 0
        while let entry = entries[index] {
            if let known = FastCGIParameters.WellKnown.of(entry) { wellKnown[known] = Int32(index) }
            index += 1
        }
        self.count = index
        self.wellKnown = wellKnown
    }

    init() {
        count = 0
        wellKnown = FastCGIParameters.WellKnownEntries()
    }
}

/// The parameters of the request being accepted, read in place (libfcgi still owns them) for one call of a
/// ``QuickResponder``.
package struct FastCGIRequestInPlace: ~Copyable {
    private let entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    private let scan: ParameterScan

    init(entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, scan: ParameterScan) {
        self.entries = entries
        self.scan = scan
    }

    /// Where a well-known parameter's value starts (a C string: it ends at its NUL), or `nil` when it is absent:
    /// the last entry of that name, as ``FastCGIRequest`` reads it. Valid only during the responder's call.
    package func value(_ name: FastCGIParameters.WellKnown) -> UnsafePointer<UInt8>? {
        let index = Int(scan.wellKnown[name])
        guard index >= 0, let entries, let entry = entries[index] else { return nil }
        return UnsafeRawPointer(name.value(in: entry)).assumingMemoryBound(to: UInt8.self)
    }

    /// Whether a well-known parameter is present and its value is exactly `bytes` (compared in place, without
    /// measuring the value first: no byte past its NUL is read).
    package func value(_ name: FastCGIParameters.WellKnown, is bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let value = value(name) else { return false }
        return Self.matches(value, bytes) && value[bytes.count] == 0
    }

    /// ``value(_:is:)-(_,UnsafeBufferPointer<UInt8>)`` for a literal.
    package func value(_ name: FastCGIParameters.WellKnown, is literal: StaticString) -> Bool {
        value(name, is: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Whether a C string starts with `prefix` (which holds no NUL). It stops at the first difference, so a
    /// shorter string is never read past its NUL.
    package static func matches(_ string: UnsafePointer<UInt8>, _ prefix: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < prefix.count {
            if string[index] != prefix[index] { return false }
            index += 1
        }
        return true
    }
}

/// A whole answer (head and body) being written into the accept thread's scratch buffer.
package struct QuickAnswer: ~Copyable {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    /// The bytes to send, once ``complete(status:headers:body:)`` has written them.
    private(set) var written: Range<Int>?

    init(buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    /// The answer's bytes; empty before ``complete(status:headers:body:)``.
    var bytes: UnsafeRawBufferPointer {
        guard let written, let base = buffer.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + written.lowerBound, count: written.count)
    }

    /// Writes the answer: the body first, after room for the head, then the head (``QuickAnswerHead``'s bytes, the
    /// body's length and the blank line) just in front of it, so that the two are one run of bytes, the bytes
    /// ``FastCGIServer`` writes for a ``FastCGIResponse`` with that status and those headers.
    /// - Parameters:
    ///   - head: the status line and the header fields, encoded once.
    ///   - body: writes the body into the buffer it is given and returns its length, or `nil` when it does not fit.
    /// - Returns: whether the answer was written; when not, nothing was.
    package mutating func complete(
        head: QuickAnswerHead, body: (UnsafeMutableBufferPointer<UInt8>) -> Int?
    ) -> Bool {
        guard written == nil, let base = buffer.baseAddress else { return false }
        return head.bytes.withUnsafeBytes { fixed in
            let headRoom = fixed.count + ResponseHeadEnd.maxCount
            guard headRoom < buffer.count / 2,
                let count = body(UnsafeMutableBufferPointer(start: base + headRoom, count: buffer.count - headRoom)),
                count >= 0, count <= buffer.count - headRoom
            else { return false }
            let start = headRoom - (fixed.count + ResponseHeadEnd.count(contentLength: count))
            UnsafeMutableRawPointer(base + start).copyMemory(from: fixed.baseAddress!, byteCount: fixed.count)
            ResponseHeadEnd.write(contentLength: count, to: base + start + fixed.count)
            written = start..<(headRoom + count)
            return true
        }
    }
}

/// A quick answer's head up to its length: the status line, the header fields and `Content-Length: `, encoded
/// once (a responder makes it when it is made).
package struct QuickAnswerHead: Sendable {
    let bytes: [UInt8]

    /// - Parameters:
    ///   - status: a status ``FastCGIServer`` has a line for (`200`); `nil` for any other.
    ///   - headers: the header fields.
    package init?(status: Int, headers: HeaderBlock) {
        guard let line = statusLine(status) else { return nil }
        var bytes: [UInt8] = []
        line.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: headers.bytes)
        bytes.append(contentsOf: "Content-Length: ".utf8)
        self.bytes = bytes
    }
}

/// The end of every response head, after the status line, the header fields and `Content-Length: `: the body's
/// length and the blank line. Written by ``FastCGIServer`` for the router's responses and by ``QuickAnswer``.
enum ResponseHeadEnd {
    /// The most bytes it takes: 20 digits and CRLF CRLF.
    static let maxCount = 24

    /// The bytes it takes for a body of this length.
    static func count(contentLength: Int) -> Int {
        DecimalText.digitCount(UInt(max(0, contentLength))) + 4
    }

    /// Writes it at `start`, which must have room for ``count(contentLength:)`` bytes.
    /// - Returns: the bytes written.
    @discardableResult
    static func write(contentLength: Int, to start: UnsafeMutablePointer<UInt8>) -> Int {
        let digits = DecimalText.write(UInt(max(0, contentLength)), to: start)
        start[digits] = UInt8(ascii: "\r")
        start[digits + 1] = UInt8(ascii: "\n")
        start[digits + 2] = UInt8(ascii: "\r")
        start[digits + 3] = UInt8(ascii: "\n")
        return digits + 4
    }

    /// Appends it to a head being built in an array.
    static func append(contentLength: Int, to head: inout [UInt8]) {
        let start = head.count
        head.append(contentsOf: repeatElement(0, count: count(contentLength: contentLength)))
        head.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            write(contentLength: contentLength, to: base + start)
        }
    }
}
