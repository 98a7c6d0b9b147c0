/// Reads a streamed answer a received chunk at a time: splits it into events, decodes them, and gathers the text
/// deltas of the chunk into one.
///
/// One chunk is what one read from the connection gave. Its deltas go to the consumer as one delta, so that a chunk
/// costs one wake-up of the consumer, one store append and one write to each stream watching the task, however many
/// events it holds. Order is kept: the text comes before the end of the answer when they share a chunk, and every
/// other event (usage, stop reason, errors, pings) has the effect it had, in its place.
struct EventStreamReader {
    private let wire: any WireFormat
    private var parser = SSEParser()

    /// - Parameter wire: the provider's wire format.
    init(wire: any WireFormat) {
        self.wire = wire
    }

    /// Reads one chunk.
    /// - Parameters:
    ///   - bytes: the chunk.
    ///   - text: gets the text of the chunk's deltas appended, those before a failure included (the caller's
    ///     retry rule counts text as delivered once decoded).
    ///   - info: the call's facts, updated from the events.
    /// - Returns: whether the answer's end was read; the bytes after it are ignored.
    /// - Throws: ``LLMError`` for an in-stream error, bad data, or an event over the parser's bound.
    mutating func read(_ bytes: [UInt8], text: inout String, info: inout LLMCompletionInfo) throws(LLMError) -> Bool {
        for event in parser.feed(bytes) {
            for signal in try wire.decode(event, info: &info) {
                switch signal {
                case .text(let piece): text += piece
                case .done: return true
                }
            }
        }
        if parser.isOverflowed {
            throw LLMError(
                code: .invalidResponse, message: "The model's server sent an event over \(parser.maxEventBytes) bytes.",
                requestID: info.requestID)
        }
        return false
    }
}
