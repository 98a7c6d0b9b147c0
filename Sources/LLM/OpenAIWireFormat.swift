// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The wire types spell their properties as the providers' JSON does (`max_tokens`), so that Codable needs no
// CodingKeys to stay byte-for-byte with the API.

import Curl
import Foundation

/// OpenAI-compatible chat completions, streamed with `stream_options.include_usage`.
struct OpenAIWireFormat: WireFormat {
    private struct Chunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable {
                var content: String?
            }
            var delta: Delta?
            var finish_reason: String?
        }
        struct Usage: Decodable {
            var prompt_tokens: Int?
            var completion_tokens: Int?
        }
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: Usage?
        var error: ErrorBody.Detail?
    }

    var requestIDHeader: String { "x-request-id" }

    func request(prompt: String, configuration: LLMConfiguration) -> HTTPRequest {
        var headers = [
            HTTPHeader("content-type", "application/json"),
            HTTPHeader("accept", "text/event-stream"),
        ]
        // Local servers (Ollama, llama.cpp) often need no key.
        if !configuration.apiKey.isEmpty {
            headers.append(HTTPHeader("authorization", "Bearer \(configuration.apiKey)"))
        }
        return HTTPRequest(
            method: "POST", url: configuration.baseURL.trimmingTrailingSlashes + "/v1/chat/completions",
            headers: headers,
            body: messagesBody(
                prompt: prompt, configuration: configuration,
                streamOptions: #""stream_options":{"include_usage":true},"#),
            connectTimeout: configuration.connectTimeout, idleTimeout: configuration.idleTimeout)
    }

    /// A whole chat completion, as the API answers without `"stream": true` (some gateways answer so even when
    /// asked to stream).
    private struct Completion: Decodable {
        struct Choice: Decodable {
            struct Message: Decodable {
                var content: String?
            }
            var index: Int?
            var message: Message?
            var finish_reason: String?
        }
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: Chunk.Usage?
        var error: ErrorBody.Detail?
    }

    func decode(_ event: SSEEvent, info: inout LLMCompletionInfo) throws(LLMError) -> [StreamSignal] {
        // Most chunks are one choice's text in one exact shape: scanned without JSONDecoder, with the effects the
        // decoding below has for that shape (the first id kept, the model updated, no usage, no finish reason).
        if event.name == "message",
            let delta = TextDeltaScanner.openAIText(event.data, readingID: info.requestID == nil)
        {
            if info.requestID == nil { info.requestID = delta.id }
            info.model = delta.model
            return delta.text.isEmpty ? [] : [.text(delta.text)]
        }
        if isDoneSentinel(event) { return [.done] }
        let chunk: Chunk
        if event.name == "message" || event.name == "error" {
            chunk = try decodeJSON(Chunk.self, from: event.data)
        } else {
            // A named event is not part of this wire format (a gateway's keep-alive or metadata): read it as a chunk
            // when it is one, ignore it otherwise.
            guard let named = try? decodeJSON(Chunk.self, from: event.data) else { return [] }
            chunk = named
        }
        if let error = chunk.error {
            throw Self.error(error, requestID: info.requestID)
        }
        if info.requestID == nil { info.requestID = chunk.id }
        info.model = chunk.model ?? info.model
        if let usage = chunk.usage {
            info.inputTokens = usage.prompt_tokens ?? info.inputTokens
            info.outputTokens = usage.completion_tokens ?? info.outputTokens
        }
        var signals: [StreamSignal] = []
        // The usage chunk has `choices: []` (OpenAI) or `choices: null` (vLLM).
        for choice in chunk.choices ?? [] {
            if let text = choice.delta?.content, !text.isEmpty { signals.append(.text(text)) }
            if let reason = choice.finish_reason { info.stopReason = reason }
        }
        return signals
    }

    func decodeDocument(_ body: [UInt8], info: inout LLMCompletionInfo) throws(LLMError) -> String {
        let completion = try decodeJSON(Completion.self, from: body)
        if let error = completion.error {
            throw Self.error(error, requestID: info.requestID)
        }
        guard let choices = completion.choices else {
            throw LLMError(
                code: .invalidResponse,
                message: "The model's server sent a JSON answer that is not a chat completion.",
                requestID: info.requestID)
        }
        if info.requestID == nil { info.requestID = completion.id }
        info.model = completion.model ?? info.model
        if let usage = completion.usage {
            info.inputTokens = usage.prompt_tokens ?? info.inputTokens
            info.outputTokens = usage.completion_tokens ?? info.outputTokens
        }
        // The answer is the first choice (one is asked for).
        let choice = choices.first { $0.index == 0 } ?? choices.first
        info.stopReason = choice?.finish_reason ?? info.stopReason
        return choice?.message?.content ?? ""
    }

    private static func error(_ error: ErrorBody.Detail, requestID: String?) -> LLMError {
        let code = (error.type ?? error.code?.value).map(LLMError.Code.init(rawValue:)) ?? .apiError
        return LLMError(
            code: code, message: error.message ?? "The model's server reported an error mid-stream.",
            requestID: requestID, isRetryable: code == .overloadedError || code == .serverError)
    }

    func error(status: Int, body: [UInt8], requestID: String?) -> LLMError {
        httpError(status: status, body: body, requestID: requestID) { status in
            switch status {
            case 400: .invalidRequestError
            case 401: .authenticationError
            case 403: .permissionError
            case 404: .notFoundError
            case 429: .rateLimitError
            default: .serverError
            }
        }
    }
}
