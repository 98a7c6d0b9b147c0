import Testing

@testable import LLM

/// The byte-based `SSEParser` against the String-based one it replaced (kept below as the reference): the same
/// events from random streams of lines, fields, comments, line endings, invalid UTF-8 and combining marks, whatever
/// the chunking.
@Suite(.timeLimit(.minutes(2))) struct SSEParserEquivalenceTests {
    @Test func randomStreamsGiveTheSameEventsAsTheReference() {
        var random = SplitMix64(seed: 15)
        let pieces: [[UInt8]] = [
            Array("data: ".utf8), Array("data:".utf8), Array("data".utf8), Array("event: ".utf8), Array("event:".utf8),
            Array("id: ".utf8), Array("id".utf8), Array("retry: 5".utf8), Array(": comment".utf8), Array(":".utf8),
            Array("x".utf8), Array(" ".utf8), Array("  ".utf8), Array("\n".utf8), Array("\r".utf8),
            Array("\r\n".utf8), Array("\n\n".utf8), Array("content_block_delta".utf8), Array("ping".utf8),
            Array("message".utf8), Array(#"{"a":"b"}"#.utf8), Array(" \u{301}".utf8), Array("é".utf8),
            [0xC3], [0xE2, 0x82], [0xFF], [0x80], Array("😀".utf8), [0x00],
        ]
        for round in 0..<500 {
            var stream: [UInt8] = []
            for _ in 0..<Int(random.next() % 40) { stream += pieces[Int(random.next() % UInt64(pieces.count))] }
            let maxEventBytes = round % 3 == 0 ? 16 : 1 << 20
            var reference = ReferenceSSEParser(maxEventBytes: maxEventBytes)
            let expected = reference.feed(stream)
            let size = 1 + Int(random.next() % 9)
            var parser = SSEParser(maxEventBytes: maxEventBytes)
            var events: [SSEEvent] = []
            for start in stride(from: 0, to: stream.count, by: size) {
                events += parser.feed(stream[start..<min(start + size, stream.count)])
            }
            #expect(events == expected, "round \(round): \(stream)")
            #expect(parser.isOverflowed == reference.isOverflowed, "round \(round)")
        }
    }

    @Test func aSpaceFollowedByACombiningMarkIsKeptAsBefore() {
        var parser = SSEParser()
        let events = parser.feed(Array("data: \u{301}x\ndata:  y\nevent: ping\n\n".utf8))
        #expect(events == [SSEEvent(name: "ping", data: " \u{301}x\n y")])
    }
}

/// The String-based parser before the byte-based rewrite, unchanged but for its name.
struct ReferenceSSEParser {
    private var line: [UInt8] = []
    private var name = ""
    private var dataLines: [String] = []
    private var id: String?
    private var sawCR = false
    /// Bytes held for the event being read: its data lines so far plus the current line.
    private var pendingBytes = 0
    /// The most bytes one event may take.
    let maxEventBytes: Int
    /// True once an event went over ``maxEventBytes``; the parser ignores everything after that.
    private(set) var isOverflowed = false

    /// - Parameter maxEventBytes: the most bytes one event may take (default 1 MiB; a model's delta is tiny).
    init(maxEventBytes: Int = 1 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// Feeds some bytes.
    /// - Parameter bytes: the next bytes of the body.
    /// - Returns: the events completed by them (none once ``isOverflowed``).
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [SSEEvent] {
        var events: [SSEEvent] = []
        guard !isOverflowed else { return events }
        for byte in bytes {
            if sawCR {
                sawCR = false
                if byte == UInt8(ascii: "\n") { continue }  // the LF of a CRLF
            }
            switch byte {
            case UInt8(ascii: "\r"):
                sawCR = true
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            default:
                pendingBytes += 1
                guard pendingBytes <= maxEventBytes else {
                    isOverflowed = true
                    line = []
                    dataLines = []
                    return events
                }
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty {
            defer {
                name = ""
                dataLines.removeAll()
                pendingBytes = 0
            }
            guard !dataLines.isEmpty else { return nil }
            return SSEEvent(name: name.isEmpty ? "message" : name, data: dataLines.joined(separator: "\n"), id: id)
        }
        if line.first == UInt8(ascii: ":") {  // a comment
            pendingBytes -= line.count
            return nil
        }
        let field: String
        var value: Substring
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = String(decoding: line[..<colon], as: UTF8.self)
            let text = String(decoding: line[line.index(after: colon)...], as: UTF8.self)
            value = text[...]
            if value.first == " " { value = value.dropFirst() }
        } else {
            field = String(decoding: line, as: UTF8.self)
            value = ""
        }
        switch field {
        case "event": name = String(value)
        case "data": dataLines.append(String(value))
        case "id": id = String(value)
        default: break
        }
        // Only data lines stay with the event; the other fields' bytes are released.
        if field != "data" { pendingBytes -= line.count }
        return nil
    }
}
