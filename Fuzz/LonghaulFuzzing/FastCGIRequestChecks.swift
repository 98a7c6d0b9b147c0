import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import LonghaulLLM
import Tasks

/// FastCGI parameters to a request and on to the app: `FastCGIRequest.params(fromEnvironment:)`, the request's
/// derived properties, `Request`'s decoders and a `LonghaulApp` router over a fresh in-memory task table.
///
/// The input is NUL-separated `NAME=VALUE` entries (as libfcgi's envp holds them), then two NULs, then the body;
/// the body is cut to `CONTENT_LENGTH` and flagged too large over ``maxBodyBytes``, as `FastCGIServer` reads it.
///
/// Invariants: the last entry with a name wins and every entry with an `=` is there; method, path, query string,
/// content type and headers read what the parameters say; the media type is lower-case with no parameters; each
/// decoder answers with its own statuses only; the app answers with a status in 100...599, header names that are
/// tokens, header values without CR or LF, UTF-8 bodies and, under `/api/`, JSON bodies.
enum FastCGIRequestChecks {
    /// The body limit of the simulated server (small, so that the fuzzer reaches it).
    static let maxBodyBytes = 512
    /// The app is mounted here; the routes answer with and without the prefix.
    static let basePath = "/base"

    static func run(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        let target = FuzzTarget.fastCGIRequest

        // Split: entries, then "\0\0", then the body.
        var end = input.count
        var bodyStart = input.count
        for index in input.indices.dropLast() where input[index] == 0 && input[index + 1] == 0 {
            end = index
            bodyStart = index + 2
            break
        }
        var entries: [UnsafeBufferPointer<UInt8>] = []
        var start = 0
        for index in 0...end where index == end || input[index] == 0 {
            if index > start { entries.append(UnsafeBufferPointer(rebasing: input[start..<index])) }
            start = index + 1
        }
        let params = FastCGIRequest.params(fromEnvironment: entries)

        // The last entry with a given (decoded) name wins; entries without "=" are skipped.
        var expected: [String: String] = [:]
        for entry in entries.reversed() {
            guard let equals = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = String(decoding: entry[..<equals], as: UTF8.self)
            if expected[name] == nil { expected[name] = String(decoding: entry[(equals + 1)...], as: UTF8.self) }
        }
        try expect(params.count == expected.count, target, "\(params.count) params, \(expected.count) names expected")
        for (name, value) in expected {
            try expect(
                params[name].map { sameBytes($0, value) } == true, target,
                "param \(show(name)) is \(params[name].map(show) ?? "missing"), not \(show(value))")
        }

        // The body as FastCGIServer reads it.
        let available = input[bodyStart...]
        let contentLength = params["CONTENT_LENGTH"].flatMap { Int($0) } ?? 0
        let raw =
            contentLength > maxBodyBytes
            ? FastCGIRequest(params: params, body: [], bodyTooLarge: true)
            : FastCGIRequest(params: params, body: Array(available.prefix(max(0, contentLength))))
        try checkDerived(raw, target)
        try checkDecoders(raw, target)
        try checkApp(raw, target)
    }

    private static func checkDerived(_ raw: FastCGIRequest, _ target: FuzzTarget) throws(InvariantViolation) {
        let params = raw.params
        try expect(sameBytes(raw.method, params["REQUEST_METHOD"] ?? "GET"), target, "method")
        try expect(sameBytes(raw.queryString, params["QUERY_STRING"] ?? ""), target, "query string")
        if let uri = params["DOCUMENT_URI"], !uri.isEmpty {
            try expect(sameBytes(raw.path, uri), target, "path is not DOCUMENT_URI")
        } else {
            let requestURI = params["REQUEST_URI"] ?? "/"
            try expect(
                !raw.path.contains("?") && requestURI.utf8.starts(with: raw.path.utf8), target,
                "path \(show(raw.path)) from REQUEST_URI \(show(requestURI))")
        }
        if let contentType = raw.contentType {
            try expect(!contentType.isEmpty && params["CONTENT_TYPE"] == contentType, target, "content type")
        } else {
            try expect((params["CONTENT_TYPE"] ?? "").isEmpty, target, "content type lost")
        }
        // Every HTTP_ parameter is found by its header name in any case, when nginx could have written it (an
        // upper-case ASCII key without "-"; header() upper-cases the name and turns "-" into "_").
        for (key, value) in params where key.hasPrefix("HTTP_") {
            let suffix = key.dropFirst(5)
            guard suffix.unicodeScalars.allSatisfy({ $0.isASCII && $0 != "-" && !("a"..."z").contains($0) }) else {
                continue
            }
            let headerName = String(suffix.map { $0 == "_" ? "-" : $0 }).lowercased()
            try expect(
                raw.header(headerName).map { sameBytes($0, value) } == true, target,
                "header(\(show(headerName))) does not find \(show(key))")
        }
    }

    private static func checkDecoders(_ raw: FastCGIRequest, _ target: FuzzTarget) throws(InvariantViolation) {
        let request = Request(raw: raw, path: raw.path)
        try expect(request.isHTMX == (raw.params["HTTP_HX_REQUEST"] == "true"), target, "isHTMX")
        if let mediaType = request.mediaType {
            try expect(
                !mediaType.isEmpty && mediaType == mediaType.lowercased()
                    && !mediaType.contains(where: { $0 == ";" || $0.isWhitespace }),
                target, "media type \(show(mediaType))")
        }

        switch Result(catching: { () throws(HTTPError) in try request.queryParameters() }) {
        case .success(let pairs):
            let direct = try? URLEncodedForm.decode(raw.queryString)
            try expect(direct.map { samePairs($0, pairs) } == true, target, "queryParameters differs from the decoder")
        case .failure(let error):
            try expect(error.status == 400, target, "queryParameters threw \(error.status)")
        }

        switch Result(catching: { () throws(HTTPError) in try request.formFields() }) {
        case .success:
            try expect(!raw.bodyTooLarge, target, "formFields accepted a body over the limit")
        case .failure(let error):
            try expect([400, 413, 415].contains(error.status), target, "formFields threw \(error.status)")
            try expect(raw.bodyTooLarge == (error.status == 413), target, "formFields: 413 iff the body is too large")
        }

        switch Result(catching: { () throws(HTTPError) in try request.jsonBody(TaskRequest.self) }) {
        case .success:
            try expect(
                request.mediaType == "application/json", target, "jsonBody accepted \(request.mediaType ?? "none")")
        case .failure(let error):
            try expect([400, 413, 415].contains(error.status), target, "jsonBody threw \(error.status)")
            try expect(raw.bodyTooLarge == (error.status == 413), target, "jsonBody: 413 iff the body is too large")
        }
    }

    private static func checkApp(_ raw: FastCGIRequest, _ target: FuzzTarget) throws(InvariantViolation) {
        let response = makeApp().respond(to: raw)
        try expect((100...599).contains(response.status), target, "status \(response.status)")
        for field in response.headers {
            try expect(
                !field.name.isEmpty && field.name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") },
                target, "header name \(show(field.name))")
            try expect(
                !field.value.utf8.contains { $0 == 0x0A || $0 == 0x0D }, target,
                "a line break in header \(field.name): \(show(field.value))")
        }
        let contentType = response.headers.first { $0.name == "Content-Type" }?.value ?? ""
        switch response.body {
        case .bytes, .block:
            let bytes = response.body.completeBytes ?? []
            try expect(String(validating: bytes, as: UTF8.self) != nil, target, "a body that is not UTF-8")
            if contentType == "application/json" {
                try expect(
                    (try? JSONSerialization.jsonObject(with: Data(bytes), options: [])) != nil, target,
                    "a JSON answer that does not parse: \(show(String(decoding: bytes, as: UTF8.self)))")
            }
        case .stream:
            try expect(contentType.hasPrefix("text/event-stream"), target, "a stream that is not text/event-stream")
        }
    }

    /// A fresh app for every input, so that an input's answer does not depend on the inputs before it. Its table is
    /// never run: tasks are queued and stay queued, and the model is never called.
    private static func makeApp() -> LonghaulApp {
        let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
        var tableConfiguration = TaskTable.Configuration()
        tableConfiguration.maxQueued = 4
        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: [LLMJob.kind: LLMJob(client: SilentLLMClient())],
            configuration: tableConfiguration, logger: logger)
        var configuration = LonghaulApp.Configuration()
        configuration.basePath = basePath
        configuration.maxQueryBytes = 64
        return LonghaulApp(
            table: table, configuration: configuration, presentation: .llm, logger: logger, addRoutes: LLMRoutes.add)
    }
}

/// A model that is never asked: the fuzzed app's task table does not run.
private struct SilentLLMClient: LLMClient {
    func complete(prompt: String) -> AsyncThrowingStream<LLMEvent, any Error> {
        AsyncThrowingStream { $0.finish() }
    }
}
