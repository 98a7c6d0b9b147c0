import FastCGI
import Foundation
import Longhaul
import LonghaulLLM

/// The body of `POST /api/tasks` (`TaskRequest.decode`: the strict grammar check, `JSONDecoder`, the field checks,
/// the query limits) and the JSON serializer (`JSONValue`).
///
/// Invariants: only 400 or 413 come back for an `application/json` body within the size limit; an accepted query is
/// not blank, trimmed, within `maxQueryBytes`, part of the `query` string `JSONDecoder` reads from the body, and
/// survives being serialized by `JSONValue` and decoded again; any text serialized by `JSONValue` parses back to
/// the same string.
enum JSONRequestChecks {
    /// Small, so that the fuzzer reaches the limit.
    static let maxQueryBytes = 64

    static func run(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        let target = FuzzTarget.jsonRequest
        let body = Array(input)
        var configuration = LonghaulApp.Configuration()
        configuration.maxQueryBytes = maxQueryBytes

        do {
            let query = try decode(body, configuration)
            try expect(!query.isEmpty, target, "an empty query was accepted")
            try expect(query.utf8.count <= maxQueryBytes, target, "a query of \(query.utf8.count) bytes was accepted")
            try expect(
                query.first?.isWhitespace == false && query.last?.isWhitespace == false, target,
                "the query \(show(query)) is not trimmed")
            let parsed = try? JSONSerialization.jsonObject(with: Data(body), options: [])
            let object = parsed as? [String: Any]
            try expect(object?.count == 1, target, "accepted a body that is not an object with one field")
            // JSONDecoder's view, as TaskRequest's: of repeated names the first counts (JSONSerialization's the last).
            let decoded = try? JSONDecoder().decode([String: String].self, from: Data(body))
            let raw = decoded?["query"] ?? ""
            try expect(raw.contains(query), target, "the query \(show(query)) is not part of \(show(raw))")

            let echoed = Array(JSONValue.object([("query", .string(query))]).serialized.utf8)
            do {
                let again = try decode(echoed, configuration)
                try expect(sameBytes(again, query), target, "re-decoding gave \(show(again)), not \(show(query))")
            } catch let error as InvariantViolation {
                throw error
            } catch {
                throw InvariantViolation(target, "the re-serialized query \(show(query)) was refused: \(error)")
            }
        } catch let error as InvariantViolation {
            throw error
        } catch let error as HTTPError {
            try expect(
                error.status == 400 || error.status == 413, target,
                "status \(error.status) (\(error.type)) for a JSON body")
        } catch {
            throw InvariantViolation(target, "unexpected error \(error)")
        }

        // Whatever the text, the serializer's output parses back to it.
        let text = String(decoding: body, as: UTF8.self)
        let serialized = JSONValue.array([.string(text)]).serialized
        guard let array = try? JSONSerialization.jsonObject(with: Data(serialized.utf8), options: []) as? [Any],
            array.count == 1, let back = array[0] as? String
        else {
            throw InvariantViolation(target, "JSONValue wrote \(show(serialized)), which is not valid JSON")
        }
        try expect(sameBytes(back, text), target, "JSONValue round trip changed \(show(text)) into \(show(back))")
        try expect(
            !serialized.unicodeScalars.contains { $0 == "<" || $0 == ">" || $0 == "&" || $0.value < 0x20 }, target,
            "JSONValue left <, >, & or a control character unescaped in \(show(serialized))")
    }

    private static func decode(_ body: [UInt8], _ configuration: LonghaulApp.Configuration) throws -> String {
        let raw = FastCGIRequest(
            params: ["REQUEST_METHOD": "POST", "DOCUMENT_URI": "/api/tasks", "CONTENT_TYPE": "application/json"],
            body: body)
        return try TaskRequest.decode(Request(raw: raw, path: "/api/tasks"), configuration: configuration)
    }
}
