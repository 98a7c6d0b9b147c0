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
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var name = ""
    private var dataLines: [String] = []
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
