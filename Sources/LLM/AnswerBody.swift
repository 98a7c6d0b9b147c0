import Foundation
import StandardExtensions

/// Decides how the body of a successful answer is read, and keeps it when it is one JSON document.
///
/// A stream is asked for, and providers answer `text/event-stream`. Gateways in front of them (LLM routers, caching
/// proxies, company gateways) sometimes answer with the whole Message or chat completion at once, as
/// `application/json`. The response's `Content-Type` decides; its first non-blank byte confirms: a JSON type (or none)
/// whose body starts with `{` is one document, anything else is read as server-sent events (a JSON-labelled body that
/// starts with `data:` is a stream whatever its label says).
struct AnswerBody {
    /// What the bytes fed so far are.
    enum Part: Equatable {
        /// Only blank bytes so far: not decided yet.
        case pending
        /// Part of one JSON document, kept in ``AnswerBody/document``.
        case document
        /// Bytes of an event stream, to be fed to the SSE parser (blank bytes held back while undecided included).
        case events([UInt8])
    }

    /// The most bytes a whole JSON answer may have (a Message of the longest answers is well under this).
    static let maxDocumentBytes = 16 << 20

    private enum Mode {
        case undecided
        case document
        case events
    }

    private var mode = Mode.undecided
    private var held: [UInt8] = []
    /// The JSON document so far, when the answer is one.
    private(set) var document: [UInt8] = []

    /// Whether the answer was decided to be one JSON document.
    var isDocument: Bool {
        if case .document = mode { return true }
        return false
    }

    /// Takes the next body bytes.
    /// - Parameters:
    ///   - bytes: the bytes.
    ///   - contentType: the answer's `Content-Type` header, if any.
    /// - Returns: what they are.
    mutating func take(_ bytes: [UInt8], contentType: String?) -> Part {
        switch mode {
        case .document:
            document += bytes
            return .document
        case .events:
            return .events(bytes)
        case .undecided:
            guard let first = bytes.first(where: { !Self.isBlank($0) }) else {
                held += bytes
                return .pending
            }
            let all = held + bytes
            held = []
            if Self.isJSON(contentType) && first == UInt8(ascii: "{") {
                mode = .document
                document = all
                return .document
            }
            mode = .events
            return .events(all)
        }
    }

    /// Whether a `Content-Type` allows a JSON document: `application/json`, `…+json`, or none at all.
    static func isJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return true }
        let media = contentType.prefix { $0 != ";" }.trimmingWhitespace().lowercased()
        return media.isEmpty || media == "application/json" || media.hasSuffix("+json")
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\n")
    }
}
