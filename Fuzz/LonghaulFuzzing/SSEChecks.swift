import LLM

/// The upstream event-stream parser (`SSEParser`).
///
/// Invariants: the events do not depend on how the bytes are chunked (whole, byte by byte, cut at a point the input
/// chooses, every chunk boundary of a CRLF included); an event name is never empty and no field holds CR or LF
/// except data's joining LFs; every event needs a field line and a blank line, so there are at most half as many
/// events as line ends.
enum SSEChecks {
    static func run(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        let target = FuzzTarget.sse
        var whole = SSEParser()
        let events = whole.feed(input)

        var byteByByte = SSEParser()
        var single: [SSEEvent] = []
        for byte in input { single += byteByByte.feed(CollectionOfOne(byte)) }
        try expect(same(single, events), target, "byte by byte: \(single.count) events, whole: \(events.count)")

        if !input.isEmpty {
            let cut = Int(input[0]) % (input.count + 1)
            var split = SSEParser()
            let parts = split.feed(input[..<cut]) + split.feed(input[cut...])
            try expect(same(parts, events), target, "cut at \(cut): \(parts.count) events, whole: \(events.count)")
        }

        var lineEnds = 0
        for index in input.indices {
            if input[index] == UInt8(ascii: "\n") {
                if index == input.startIndex || input[index - 1] != UInt8(ascii: "\r") { lineEnds += 1 }
            } else if input[index] == UInt8(ascii: "\r") {
                lineEnds += 1
            }
        }
        try expect(events.count * 2 <= lineEnds, target, "\(events.count) events from \(lineEnds) line ends")

        for event in events {
            try expect(!event.name.isEmpty, target, "an event with an empty name")
            try expect(!event.name.utf8.contains { $0 == 0x0A || $0 == 0x0D }, target, "a line break in the name")
            try expect(!event.data.utf8.contains(0x0D), target, "a CR in the data \(show(event.data))")
            try expect(
                !(event.id?.utf8.contains { $0 == 0x0A || $0 == 0x0D } ?? false), target, "a line break in the id")
        }
    }

    private static func same(_ lhs: [SSEEvent], _ rhs: [SSEEvent]) -> Bool {
        lhs.count == rhs.count
            && zip(lhs, rhs).allSatisfy { left, right in
                sameBytes(left.name, right.name) && sameBytes(left.data, right.data)
                    && (left.id == nil) == (right.id == nil) && sameBytes(left.id ?? "", right.id ?? "")
            }
    }
}
