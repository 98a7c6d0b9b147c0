// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The wire types spell their properties as the providers' JSON does (`max_tokens`), so that Codable needs no
// CodingKeys to stay byte-for-byte with the API.

import Curl
import Foundation

/// Anthropic's Messages API, always streamed.
struct AnthropicWireFormat: WireFormat {
    struct Event: Decodable, Equatable {
        struct Message: Decodable, Equatable {
            var id: String?
            var model: String?
            var usage: Usage?
        }
        struct Delta: Decodable, Equatable {
            var type: String?
            var text: String?
            var stop_reason: String?
        }
        struct Usage: Decodable, Equatable {
            var input_tokens: Int?
            var output_tokens: Int?
        }
        var type: String?
        var message: Message?
        var delta: Delta?
        var usage: Usage?
        var error: ErrorBody.Detail?
    }

    var requestIDHeader: String { "request-id" }

    func request(prompt: String, configuration: LLMConfiguration) -> HTTPRequest {
        return HTTPRequest(
            method: "POST", url: configuration.baseURL.trimmingTrailingSlashes + "/v1/messages",
            headers: [
                HTTPHeader("x-api-key", configuration.apiKey),
                HTTPHeader("anthropic-version", configuration.anthropicVersion),
                HTTPHeader("content-type", "application/json"),
                HTTPHeader("accept", "text/event-stream"),
            ],
            body: messagesBody(prompt: prompt, configuration: configuration),
            connectTimeout: configuration.connectTimeout, idleTimeout: configuration.idleTimeout)
    }

    /// A whole Message, as the API answers without `"stream": true` (some gateways answer so even when asked to
    /// stream).
    private struct Message: Decodable {
        struct Block: Decodable {
            var type: String?
            var text: String?
        }
        var id: String?
        var type: String?
        var model: String?
        var content: [Block]?
        var stop_reason: String?
        var usage: Event.Usage?
        var error: ErrorBody.Detail?
    }

    func decode(_ event: SSEEvent, info: inout LLMCompletionInfo) throws(LLMError) -> [StreamSignal] {
        // Most events are text deltas in one exact shape: scanned without JSONDecoder. Any other shape is decoded
        // below, with the same result the scanner would give for its shape. (An unnamed event's JSON names it.)
        if event.name == "content_block_delta" || event.name == "message",
            let text = TextDeltaScanner.anthropicText(event.data)
        {
            return text.isEmpty ? [] : [.text(text)]
        }
        // Gateways end Anthropic streams with OpenAI's sentinel too.
        if isDoneSentinel(event) { return [.done] }
        var decoded: Event? = nil
        var type = event.name
        if type == "message" {
            // No `event:` line (a gateway dropped them): the JSON's `type` names the event, as it always does.
            decoded = try decodeEvent(event.data)
            type = decoded?.type ?? ""
        }
        switch type {
        case "ping":
            return []
        case "message_start":
            let decoded = try parsed(event, already: decoded)
            if info.requestID == nil { info.requestID = decoded.message?.id }
            info.model = decoded.message?.model ?? info.model
            info.inputTokens = decoded.message?.usage?.input_tokens ?? info.inputTokens
            info.outputTokens = decoded.message?.usage?.output_tokens ?? info.outputTokens
            return []
        case "content_block_delta":
            let decoded = try parsed(event, already: decoded)
            if decoded.delta?.type == "text_delta", let text = decoded.delta?.text, !text.isEmpty {
                return [.text(text)]
            }
            return []
        case "message_delta":
            let decoded = try parsed(event, already: decoded)
            info.stopReason = decoded.delta?.stop_reason ?? info.stopReason
            info.outputTokens = decoded.usage?.output_tokens ?? info.outputTokens
            info.inputTokens = decoded.usage?.input_tokens ?? info.inputTokens
            return []
        case "message_stop":
            return [.done]
        case "error":
            let decoded = try parsed(event, already: decoded)
            let code = decoded.error?.type.map(LLMError.Code.init(rawValue:)) ?? .apiError
            throw LLMError(
                code: code, message: decoded.error?.message ?? "The model's server reported an error mid-stream.",
                requestID: info.requestID, isRetryable: code == .overloadedError)
        case "content_block_start", "content_block_stop":
            // Nothing we need, but a known event: its JSON is still checked.
            if decoded == nil { _ = try decodeEvent(event.data) }
            return []
        default:
            // Unknown event types must be ignored (the API's versioning policy; gateways add their own).
            return []
        }
    }

    /// The event's JSON: the one already decoded (to read its `type`), or decoded now.
    private func parsed(_ event: SSEEvent, already decoded: Event?) throws(LLMError) -> Event {
        if let decoded { return decoded }
        return try decodeEvent(event.data)
    }

    /// An event's JSON: read by ``EventJSON`` when it reads it exactly as `JSONDecoder` would, else decoded by it.
    private func decodeEvent(_ data: String) throws(LLMError) -> Event {
        if let event = Self.quickEvent(data) { return event }
        return try decodeJSON(Event.self, from: data)
    }

    /// The event from ``EventJSON``; `nil` for anything it leaves to `JSONDecoder` (an error event, a duplicate
    /// key, a member of an unexpected type).
    static func quickEvent(_ data: String) -> Event? {
        guard let json = EventJSON.parse(data), case .object = json else { return nil }
        // An error event's `code` may be a string or a number: left to JSONDecoder (and rare).
        guard let error = json["error"], error == nil, let type = json.string("type"),
            let message = json.object("message"), let delta = json.object("delta"), let usage = json.object("usage")
        else { return nil }
        var event = Event()
        event.type = type
        if let message {
            guard let id = message.string("id"), let model = message.string("model"),
                let messageUsage = message.object("usage")
            else { return nil }
            event.message = Event.Message(id: id, model: model)
            if let messageUsage {
                guard let read = quickUsage(messageUsage) else { return nil }
                event.message?.usage = read
            }
        }
        if let delta {
            guard let deltaType = delta.string("type"), let text = delta.string("text"),
                let stopReason = delta.string("stop_reason")
            else { return nil }
            event.delta = Event.Delta(type: deltaType, text: text, stop_reason: stopReason)
        }
        if let usage {
            guard let read = quickUsage(usage) else { return nil }
            event.usage = read
        }
        return event
    }

    private static func quickUsage(_ json: EventJSON) -> Event.Usage? {
        guard let input = json.int("input_tokens"), let output = json.int("output_tokens") else { return nil }
        return Event.Usage(input_tokens: input, output_tokens: output)
    }

    func decodeDocument(_ body: [UInt8], info: inout LLMCompletionInfo) throws(LLMError) -> String {
        let message = try decodeJSON(Message.self, from: body)
        if message.type == "error" || (message.error != nil && message.content == nil) {
            let code = message.error?.type.map(LLMError.Code.init(rawValue:)) ?? .apiError
            throw LLMError(
                code: code, message: message.error?.message ?? "The model's server reported an error.",
                requestID: info.requestID, isRetryable: code == .overloadedError)
        }
        guard let content = message.content else {
            throw LLMError(
                code: .invalidResponse, message: "The model's server sent a JSON answer that is not a Message.",
                requestID: info.requestID)
        }
        if info.requestID == nil { info.requestID = message.id }
        info.model = message.model ?? info.model
        info.stopReason = message.stop_reason ?? info.stopReason
        info.inputTokens = message.usage?.input_tokens ?? info.inputTokens
        info.outputTokens = message.usage?.output_tokens ?? info.outputTokens
        return content.filter { $0.type == "text" }.compactMap(\.text).joined()
    }

    func error(status: Int, body: [UInt8], requestID: String?) -> LLMError {
        httpError(status: status, body: body, requestID: requestID) { status in
            switch status {
            case 400: .invalidRequestError
            case 401: .authenticationError
            case 403: .permissionError
            case 404: .notFoundError
            case 413: .requestTooLarge
            case 429: .rateLimitError
            case 529: .overloadedError
            default: .apiError
            }
        }
    }
}

extension String {
    var trimmingTrailingSlashes: String {
        var text = self
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}
