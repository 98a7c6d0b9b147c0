import Foundation

/// One server-sent event.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, or `"message"` when absent.
    public var name: String
    /// The `data:` lines joined with newlines.
    public var data: String
    /// The `id:` field, if any.
    public var id: String?

    public init(name: String = "message", data: String, id: String? = nil) {
        self.name = name
        self.data = data
        self.id = id
    }
}

/// Splits a `text/event-stream` body into events, as the WHATWG spec describes, whatever the chunking.
///
/// The bytes of the event being read are bounded (`maxEventBytes`): an upstream that never ends a line or an
/// event would otherwise grow memory without limit. Past the bound the parser stops and sets ``isOverflowed``.
///
/// It works on bytes (an event's data lines are joined as bytes and made a `String` once, when it is dispatched):
/// it runs once per delta, so a `String` per line and per field would be most of its cost.
public struct SSEParser: Sendable {
    /// The start of a line that an earlier chunk began (a line within one chunk is read where it is).
    private var line: [UInt8] = []
    /// The `event:` field's value so far, as bytes.
    private var name: [UInt8] = []
    /// The data lines so far, joined with newlines.
    private var data: [UInt8] = []
    private var dataLineCount = 0
    private var id: String?
    private var sawCR = false
    /// Bytes held for the event being read: its data lines so far plus the current line.
    private var pendingBytes = 0
    /// The most bytes one event may take.
    public let maxEventBytes: Int
    /// True once an event went over ``maxEventBytes``; the parser ignores everything after that.
    public private(set) var isOverflowed = false

    /// - Parameter maxEventBytes: the most bytes one event may take (default 1 MiB; a model's delta is tiny).
    public init(maxEventBytes: Int = 1 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// Feeds some bytes.
    /// - Parameter bytes: the next bytes of the body.
    /// - Returns: the events completed by them (none once ``isOverflowed``).
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        if let events = bytes.withContiguousStorageIfAvailable({ feed(buffer: $0) }) { return events }
        return Array(bytes).withUnsafeBufferPointer { feed(buffer: $0) }
    }

    private mutating func feed(buffer bytes: UnsafeBufferPointer<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        guard !isOverflowed else { return events }
        var position = 0
        while position < bytes.count {
            if sawCR {
                sawCR = false
                if bytes[position] == UInt8(ascii: "\n") {  // the LF of a CRLF
                    position += 1
                    continue
                }
            }
            // The rest of the line: the bytes up to the next CR or LF.
            let end = Self.lineEnd(in: bytes, from: position)
            let rest = UnsafeBufferPointer(rebasing: bytes[position..<end])
            pendingBytes += rest.count
            guard pendingBytes <= maxEventBytes else {
                isOverflowed = true
                line = []
                name = []
                data = []
                return events
            }
            guard end < bytes.count else {
                line.append(contentsOf: rest)  // the line goes on in the next chunk
                break
            }
            if bytes[end] == UInt8(ascii: "\r") { sawCR = true }
            // A line within the chunk is read where it is; one begun in an earlier chunk from `line`.
            if line.isEmpty {
                if let event = endLine(rest) { events.append(event) }
            } else {
                line.append(contentsOf: rest)
                var held: [UInt8] = []
                swap(&held, &line)
                if let event = held.withUnsafeBufferPointer({ endLine($0) }) { events.append(event) }
                held.removeAll(keepingCapacity: true)
                swap(&held, &line)
            }
            position = end + 1
        }
        return events
    }

    private mutating func endLine(_ line: UnsafeBufferPointer<UInt8>) -> SSEEvent? {
        if line.isEmpty {
            defer {
                name.removeAll(keepingCapacity: true)
                data.removeAll(keepingCapacity: true)
                dataLineCount = 0
                pendingBytes = 0
            }
            guard dataLineCount > 0 else { return nil }
            return SSEEvent(name: Self.eventName(name), data: String(decoding: data, as: UTF8.self), id: id)
        }
        if line[0] == UInt8(ascii: ":") {  // a comment
            pendingBytes -= line.count
            return nil
        }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        let field = UnsafeBufferPointer(rebasing: line[..<colon])
        var valueStart = min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == UInt8(ascii: " "), Self.spaceStandsAlone(line, valueStart) {
            valueStart += 1
        }
        let value = UnsafeBufferPointer(rebasing: line[valueStart...])
        if Self.equal(field, "data") {
            if dataLineCount > 0 { data.append(UInt8(ascii: "\n")) }
            data.append(contentsOf: value)
            dataLineCount += 1
            // Only data lines stay with the event; the other fields' bytes are released.
            return nil
        }
        if Self.equal(field, "event") {
            name.removeAll(keepingCapacity: true)
            name.append(contentsOf: value)
        } else if Self.equal(field, "id") {
            id = String(decoding: value, as: UTF8.self)
        }
        pendingBytes -= line.count
        return nil
    }

    /// The index of the first CR or LF from `start`, or the end: memchr (vectorised) for the LF, then for a CR
    /// before it (most streams end lines with LF alone).
    private static func lineEnd(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        guard start < bytes.count, let base = bytes.baseAddress else { return bytes.count }
        let lineFeed = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start)
        let end = lineFeed.map { UnsafeRawPointer(base).distance(to: $0) } ?? bytes.count
        guard end > start else { return end }
        let carriageReturn = memchr(base + start, Int32(UInt8(ascii: "\r")), end - start)
        return carriageReturn.map { UnsafeRawPointer(base).distance(to: $0) } ?? end
    }

    /// Whether the space at `index` is a character of its own, so that it is the one space the spec drops after
    /// the colon. The parser used to compare the value's first `Character`, and a space followed by a combining
    /// mark is one `Character` with it: that is kept as it was (only a non-ASCII byte can start such a mark).
    private static func spaceStandsAlone(_ line: UnsafeBufferPointer<UInt8>, _ index: Int) -> Bool {
        guard index + 1 < line.count, line[index + 1] >= 0x80 else { return true }
        return String(decoding: UnsafeBufferPointer(rebasing: line[index...]), as: UTF8.self).first == " "
    }

    /// Whether the bytes are the text's UTF-8.
    private static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let expected = text.utf8Start
        for index in 0..<bytes.count where bytes[index] != expected[index] { return false }
        return true
    }

    /// The event's name: `message` when it has none; the names providers send are literals (no allocation).
    private static func eventName(_ bytes: [UInt8]) -> String {
        if bytes.isEmpty { return "message" }
        for known in knownNames where known.utf8.count == bytes.count {
            let same = known.utf8.withContiguousStorageIfAvailable { memcmp($0.baseAddress!, bytes, bytes.count) == 0 }
            if same == true { return known }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let knownNames = [
        "content_block_delta", "message_start", "content_block_start", "content_block_stop", "message_delta",
        "message_stop", "ping", "error",
    ]
}
