// swift-format-ignore-file: AlwaysUseLowerCamelCase
// The wire types spell their properties as the providers' JSON does (`max_tokens`), so that Codable needs no
// CodingKeys to stay byte-for-byte with the API.

import Curl
import Foundation
import StandardExtensions

/// What one decoded upstream event means for the call.
enum StreamSignal: Equatable {
    /// More answer text.
    case text(String)
    /// The call has completed.
    case done
}

/// One provider's wire format: how to ask, how to read the streamed answer, how to read an error.
protocol WireFormat: Sendable {
    /// The request for a prompt.
    func request(prompt: String, configuration: LLMConfiguration) -> HTTPRequest
    /// Decodes one event into signals, updating `info`; throws for an in-stream error or bad data. Events of unknown
    /// types, and unknown fields, are ignored (gateways add their own).
    func decode(_ event: SSEEvent, info: inout LLMCompletionInfo) throws(LLMError) -> [StreamSignal]
    /// Decodes a whole answer sent as one JSON document (a Message, a chat completion) by a gateway that ignored
    /// `"stream": true`, updating `info`; returns the answer's text. Throws for an error document or bad data.
    func decodeDocument(_ body: [UInt8], info: inout LLMCompletionInfo) throws(LLMError) -> String
    /// The error for an HTTP error status, from its body.
    func error(status: Int, body: [UInt8], requestID: String?) -> LLMError
    /// The header carrying the request id.
    var requestIDHeader: String { get }
}

/// Error bodies of both providers: Anthropic `{"type":"error","error":{"type","message"}}`, OpenAI
/// `{"error":{"type","message","code"}}`.
struct ErrorBody: Decodable {
    struct Detail: Decodable, Equatable {
        var type: String?
        var message: String?
        var code: FlexibleString?
    }
    var error: Detail?
    var request_id: String?
}

/// A JSON value that may be a string or a number (OpenAI's `code`).
struct FlexibleString: Decodable, Equatable {
    var value: String
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            value = text
        } else if let number = try? container.decode(Int.self) {
            value = String(number)
        } else {
            value = ""
        }
    }
}

extension WireFormat {
    /// The streamed request body both providers take for one user message, written directly (`JSONEncoder` costs
    /// some 50,000 instructions for it):
    /// `{"model":…,"max_tokens":…,"stream":true,<options>"messages":[{"role":"user","content":…}]}`.
    /// - Parameters:
    ///   - prompt: the user's message.
    ///   - configuration: the model and the token limit.
    ///   - streamOptions: members to put before `messages`, each followed by a comma (OpenAI's `stream_options`).
    func messagesBody(prompt: String, configuration: LLMConfiguration, streamOptions: String = "") -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(prompt.utf8.count + configuration.model.utf8.count + 128)
        body.append(contentsOf: #"{"model":"#.utf8)
        JSONStringLiteral.write(configuration.model, to: &body)
        body.append(contentsOf: #","max_tokens":"#.utf8)
        body.append(contentsOf: String(configuration.maxTokens).utf8)
        body.append(contentsOf: #","stream":true,"#.utf8)
        body.append(contentsOf: streamOptions.utf8)
        body.append(contentsOf: #""messages":[{"role":"user","content":"#.utf8)
        JSONStringLiteral.write(prompt, to: &body)
        body.append(contentsOf: "}]}".utf8)
        return body
    }

    /// Decodes JSON event data, or fails with `invalid_response`.
    func decodeJSON<T: Decodable>(_ type: T.Type, from data: String) throws(LLMError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(data.utf8))
        } catch {
            throw LLMError(
                code: .invalidResponse, message: "The model's server sent malformed JSON in its stream.")
        }
    }

    /// Decodes a whole JSON answer, or fails with `invalid_response`.
    func decodeJSON<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(LLMError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw LLMError(
                code: .invalidResponse, message: "The model's server sent a malformed JSON answer.")
        }
    }

    /// Whether an event's data is the `[DONE]` sentinel that OpenAI-style streams (and some gateways in front of
    /// Anthropic) end with.
    func isDoneSentinel(_ event: SSEEvent) -> Bool {
        // Every other event is JSON: its first byte that is not ASCII whitespace says so without trimming by
        // `Character`s (~3,400 instructions an event).
        for byte in event.data.utf8 {
            switch byte {
            case 0x09...0x0D, 0x20: continue
            case UInt8(ascii: "["), 0x80...: return event.data.trimmingWhitespace() == "[DONE]"
            default: return false
            }
        }
        return false
    }

    /// The error for a non-2xx status: the provider's type and message when the body is JSON, otherwise one
    /// derived from the status (a proxy's HTML page says nothing useful).
    func httpError(
        status: Int, body: [UInt8], requestID: String?, fallbackCode: (Int) -> LLMError.Code
    ) -> LLMError {
        let parsed = try? JSONDecoder().decode(ErrorBody.self, from: Data(body))
        let code = parsed?.error?.type.map(LLMError.Code.init(rawValue:)) ?? fallbackCode(status)
        let message =
            parsed?.error?.message
            ?? "The model's server answered HTTP \(status) without an error description."
        return LLMError(
            code: code, message: message, httpStatus: status, requestID: requestID ?? parsed?.request_id)
    }
}
