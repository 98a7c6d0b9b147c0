import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import LonghaulLLM
import LonghaulTestSupport
import Tasks
import Testing

@Suite(.timeLimit(.minutes(2))) struct AppTests {
    @Test func indexPageHasTheFormAndAssets() {
        let page = AppHarness(client: ScriptedLLMClient(pieces: [])).send("GET", "/")
        #expect(page.status == 200)
        #expect(page.text.contains("<title>Long running</title>"))
        #expect(page.text.contains(##"hx-post="/generate" hx-target="#result" hx-swap="beforeend"##))
        #expect(page.text.contains(#"<div id="messages""#))
        #expect(page.text.contains(#"name="query""#))
        #expect(page.text.contains(#"<div id="result""#))
        #expect(page.text.contains(#"src="/static/vendor/htmx-2.min.js""#))
    }

    @Test func generateThenCheckShowsTheEscapedResultAgainAndAgain() async throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: ["Hi ", "<script>x</script>"]))
        let started = harness.form("hello")
        #expect(started.status == 200)
        #expect(started.text.contains("Processing..."))
        #expect(started.text.contains(#"hx-trigger="sse:done, sse:reset, every 1s""#))
        #expect(started.text.contains(#"sse-connect="/stream?task_id="#))
        #expect(started.text.contains(#"hx-swap="outerHTML""#))
        #expect(started.text.contains(#"data-created-at=""#))
        #expect(started.text.contains(#"<span class="elapsed" role="timer">"#))
        let id = try #require(harness.taskID(in: started.text))
        let done = try await harness.finalFragment(id)
        #expect(done.text.contains("<h2>Result</h2>"))
        #expect(done.text.contains("Hi &lt;script&gt;x&lt;/script&gt;"))
        #expect(!done.text.contains("<script>"))
        #expect(!done.text.contains("hx-trigger"))
        #expect(harness.send("GET", "/check?task_id=\(id)").text == done.text)
    }

    @Test(arguments: ["", "   ", "\n\t"])
    func blankQueriesAreRefused(_ query: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let htmx = harness.form(query)
        #expect(htmx.status == 400)
        #expect(htmx.text.contains("No query provided"))
        let plain = harness.form(query, htmx: false)
        #expect(plain.status == 400)
        #expect(plain.text.contains("No query provided") && plain.text.contains("<!DOCTYPE html>"))
        let api = harness.send(
            "POST", "/api/tasks",
            body:
                #"{"query":"\#(query.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t"))"}"#,
            contentType: "application/json")
        #expect(api.status == 400)
        #expect(api.text.contains(#""type":"missing_query""#))
    }

    @Test func plainPostRedirectsToASelfRefreshingPage() async throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: ["ok"]))
        let answer = harness.form("q", htmx: false)
        #expect(answer.status == 303)
        let location = try #require(answer.header("Location"))
        #expect(location.hasPrefix("/task?task_id="))
        let id = try #require(harness.taskID(in: location))
        _ = try await harness.finalFragment(id)
        let page = harness.send("GET", "/task?task_id=\(id)")
        #expect(page.status == 200)
        #expect(page.text.contains("<h2>Result</h2>"))
        #expect(!page.text.contains("http-equiv=\"refresh\""))
    }

    @Test(arguments: [
        "", "task_id=", "task_id=nope", "task_id=AAAAAAAAAAAAAAAAAAAAAA", "task_id=%ZZ", "task_id=0x55d1c3a0",
    ])
    func unknownOrMalformedIDsAre404AndStopPolling(_ query: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let check = harness.send("GET", "/check?\(query)", htmx: true)
        #expect(check.status == 404 || check.status == 400)
        if check.status == 404 { #expect(check.text.contains("Unknown or expired task")) }
        #expect(!check.text.contains("hx-trigger"))
        #expect(!check.text.contains("Processing"))
    }

    @Test func failuresShowTypeAndRequestID() async throws {
        let error = LLMError(
            code: .authenticationError, message: "invalid x-api-key", httpStatus: 401, requestID: "req_401", attempts: 1
        )
        let harness = AppHarness(client: ScriptedLLMClient(pieces: [], error: error))
        let id = try #require(harness.taskID(in: harness.form("q").text))
        let done = try await harness.finalFragment(id)
        #expect(done.text.contains("task-failed"))
        #expect(done.text.contains("authentication_error"))
        #expect(done.text.contains("req_401"))
        // Try again: a real form that submits the same query again, in place of this task under htmx.
        #expect(
            done.text.contains(
                ##"<form class="retry" method="post" action="/generate" hx-post="/generate" hx-target="#task-\##(id)""##
            ))
        #expect(done.text.contains(#"<input type="hidden" name="query" value="q">"#))
        let api = harness.send("GET", "/api/tasks/\(id)")
        #expect(api.text.contains(#""status":"failed""#))
        #expect(
            api.text.contains(
                #""error":{"type":"authentication_error","message":"invalid x-api-key","request_id":"req_401","attempts":1}"#
            ))
    }

    @Test func apiHappyPath() async throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: ["a", "b"]))
        let created = harness.send(
            "POST", "/api/tasks", body: #"{"query":"hi"}"#, contentType: "application/json; charset=utf-8")
        #expect(created.status == 202)
        let location = try #require(created.header("Location"))
        let id = String(location.dropFirst("/api/tasks/".count))
        #expect(created.text.hasPrefix(#"{"id":"\#(id)","status":"queued""#))
        _ = try await harness.finalFragment(id)
        let got = harness.send("GET", location)
        #expect(got.status == 200)
        #expect(got.text.contains(#""status":"succeeded""#))
        #expect(got.text.contains(#""result":"ab""#))
        #expect(got.text.contains(#""usage":{"input_tokens":4,"output_tokens":2}"#))
        #expect(got.text.contains(#""request_id":"req_ok""#))
    }

    @Test func apiErrorsAreJSONWithTheRightStatus() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let cases: [(AppHarness.Answer, Int, String)] = [
            (harness.send("GET", "/api/tasks/AAAAAAAAAAAAAAAAAAAAAA"), 404, "unknown_task"),
            (harness.send("GET", "/api/tasks/not-an-id"), 404, "unknown_task"),
            (harness.send("POST", "/api/tasks", body: "{", contentType: "application/json"), 400, "invalid_request"),
            (harness.send("POST", "/api/tasks", body: "[1]", contentType: "application/json"), 400, "invalid_request"),
            (
                harness.send("POST", "/api/tasks", body: #"{"query":5}"#, contentType: "application/json"), 400,
                "invalid_request"
            ),
            (
                harness.send("POST", "/api/tasks", body: #"{"query":"x","extra":1}"#, contentType: "application/json"),
                400, "invalid_request"
            ),
            (
                harness.send("POST", "/api/tasks", body: #"{"query":"x"}"#, contentType: "text/plain"), 415,
                "unsupported_media_type"
            ),
            (
                harness.send(
                    "POST", "/api/tasks", body: #"{"query":"\#(String(repeating: "x", count: 65))"}"#,
                    contentType: "application/json"), 413, "content_too_large"
            ),
            (harness.send("GET", "/api/tasks"), 405, "method_not_allowed"),
            (harness.send("PUT", "/api/tasks/AAAAAAAAAAAAAAAAAAAAAA"), 405, "method_not_allowed"),
            (harness.send("GET", "/api/nothing"), 404, "not_found"),
        ]
        for (answer, status, type) in cases {
            #expect(answer.status == status, "\(answer.text)")
            #expect(answer.text.contains(#"{"error":{"type":"\#(type)","message":"#), "\(answer.text)")
            #expect(answer.header("Content-Type") == nil || answer.header("Content-Type") == "application/json")
        }
        #expect(cases[8].0.header("Allow") == "POST")
    }

    @Test func aFullQueueIs503AndCreatesNothing() async throws {
        let slow = ClosureLLM()
        let harness = AppHarness(client: slow, maxQueued: 1, maxInFlight: 1)
        let first = harness.send("POST", "/api/tasks", body: #"{"query":"1"}"#, contentType: "application/json")
        #expect(first.status == 202)
        // Wait until the first task runs, so the queue holds only the second.
        for _ in 0..<500 where !harness.send("GET", try #require(first.header("Location"))).text.contains("running") {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(
            harness.send("POST", "/api/tasks", body: #"{"query":"2"}"#, contentType: "application/json").status == 202)
        let full = harness.send("POST", "/api/tasks", body: #"{"query":"3"}"#, contentType: "application/json")
        #expect(full.status == 503)
        #expect(full.header("Retry-After") == "5")
        #expect(full.text.contains(#""type":"queue_full""#))
        let page = harness.form("4")
        #expect(page.status == 503)
        #expect(page.text.contains("busy"))
    }

    @Test func appWorksUnderABasePath() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []), basePath: "/ask/")
        let page = harness.send("GET", "/ask")
        #expect(page.status == 200)
        #expect(page.text.contains(#"hx-post="/ask/generate""#))
        #expect(page.text.contains(#"href="/ask/static/app.css""#))
        let started = harness.send(
            "POST", "/ask/generate", body: "query=x", contentType: "application/x-www-form-urlencoded", htmx: true)
        #expect(started.text.contains(#"hx-get="/ask/check?task_id="#))
    }

    @Test func headIsAnsweredLikeGetAndUnknownMethodsGet405() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        #expect(harness.send("HEAD", "/").status == 200)
        let post = harness.send("POST", "/check")
        #expect(post.status == 405)
        #expect(post.header("Allow") == "GET, HEAD")
    }

    /// The status page counts the process's open file descriptors and OS threads (from /proc on Linux), so a leak
    /// after a fault shows there (issue 8); the end-to-end suite compares them before and after each fault.
    @Test func statusCountsOpenFileDescriptorsAndThreads() throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("GET", "/status?json")
        #expect(answer.status == 200)
        let status = try #require(try JSONSerialization.jsonObject(with: Data(answer.text.utf8)) as? [String: Any])
        let text = harness.send("GET", "/status").text
        #if os(Linux)
            let fds = try #require(status["open_fds"] as? Int)
            let threads = try #require(status["os_threads"] as? Int)
            // At least stdin, stdout and stderr; at least this thread.
            #expect(fds >= 3)
            #expect(threads >= 1)
            // 100 pipes held open count 200 more descriptors (other tests may close a few of theirs meanwhile,
            // hence the margin).
            var pipes: [Int32] = []
            defer { for fd in pipes { close(fd) } }
            for _ in 0..<100 {
                var ends: [Int32] = [0, 0]
                try #require(pipe(&ends) == 0)
                pipes += ends
            }
            let more = try #require(
                try JSONSerialization.jsonObject(with: Data(harness.send("GET", "/status?json").text.utf8))
                    as? [String: Any])
            #expect(try #require(more["open_fds"] as? Int) >= fds + 150)
            #expect(text.contains("open fds: "))
            #expect(text.contains("os threads: "))
            // 64 MiB more allocated shows in the heap figures (other tests allocate and free meanwhile, hence the
            // margin); less than in use is never held.
            let inUse = try #require(more["heap_in_use_bytes"] as? Int)
            #expect(try #require(more["heap_held_bytes"] as? Int) >= inUse)
            let block = UnsafeMutableRawPointer.allocate(byteCount: 64 << 20, alignment: 16)
            defer { block.deallocate() }
            let grown = try #require(
                try JSONSerialization.jsonObject(with: Data(harness.send("GET", "/status?json").text.utf8))
                    as? [String: Any])
            // Under ASan or TSan, malloc is the sanitizer's: glibc's figures do not see the block.
            if dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil,
                dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") == nil
            {
                #expect(try #require(grown["heap_in_use_bytes"] as? Int) >= inUse + (48 << 20))
            }
            #expect(text.contains("heap in use bytes: "))
        #else
            #expect(status["open_fds"] == nil)
        #endif
    }
}

@Suite(.timeLimit(.minutes(2))) struct CancelTests {
    @Test func cancellingSaysWhatHappened() async throws {
        let harness = AppHarness(client: ClosureLLM())
        let created = harness.send("POST", "/api/tasks", body: #"{"query":"q"}"#, contentType: "application/json")
        let location = try #require(created.header("Location"))
        for _ in 0..<500 where !harness.send("GET", location).text.contains(#""status":"running""#) {
            try await Task.sleep(for: .milliseconds(10))
        }
        let first = harness.send("DELETE", location)
        #expect(first.status == 200)
        #expect(first.text.contains(#""cancel":"requested""#))
        for _ in 0..<500 where !harness.send("GET", location).text.contains(#""status":"cancelled""#) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(harness.send("GET", location).text.contains(#""status":"cancelled""#))
        let second = harness.send("DELETE", location)
        #expect(second.status == 200)
        #expect(second.text.contains(#""cancel":"already_finished""#))
        #expect(harness.send("DELETE", "/api/tasks/AAAAAAAAAAAAAAAAAAAAAA").status == 404)
    }

    @Test func aQueuedTaskNeverStarts() throws {
        let harness = AppHarness(client: ClosureLLM(), maxInFlight: 1)
        _ = harness.send("POST", "/api/tasks", body: #"{"query":"1"}"#, contentType: "application/json")
        let second = harness.send("POST", "/api/tasks", body: #"{"query":"2"}"#, contentType: "application/json")
        let location = try #require(second.header("Location"))
        let cancelled = harness.send("DELETE", location)
        #expect(cancelled.text.contains(#""status":"cancelled""#))
        #expect(cancelled.text.contains(#""cancel":"cancelled""#))
        #expect(!cancelled.text.contains("started_at"))
    }
}

/// Bad input (issue 8): answers stay short and readable however much garbage comes in.
@Suite(.timeLimit(.minutes(2))) struct BadInputAppTests {
    @Test func thousandsOfUnknownFieldsGetAShortMessage() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let fields = (1...5000).map { #""f\#($0)":1"# }.joined(separator: ",")
        let answer = harness.send(
            "POST", "/api/tasks", body: "{\(fields),\"query\":\"x\"}", contentType: "application/json")
        #expect(answer.status == 400)
        #expect(
            answer.text.contains("Unknown field(s): f1, f10, f100, f1000, f1001... (5000 in all)"), "\(answer.text)")
        #expect(answer.text.utf8.count < 300)
        let two = harness.send(
            "POST", "/api/tasks", body: #"{"query":"x","b":1,"a":2}"#, contentType: "application/json")
        #expect(two.text.contains("Unknown field(s): a, b. Send"), "\(two.text)")
    }

    @Test(arguments: [
        #"{"query":"x",}"#, #"{"query":"x"},"#, #"["x",]"#, #"{"query":'x'}"#, #"{query:"x"}"#,
        "{\"query\":\"x\"} // c",
        #"{"query":"x"}/* c */"#, #"{"query":NaN}"#, #"{"query":01}"#, #"{"query":.5}"#, #"{"query":+1}"#,
        #"{"query":1.}"#,
        #"{"query":1e}"#, #"{"query":"\x41"}"#, #"{"query":"\u12"}"#, "{\"query\":\"a\u{01}b\"}", #"{"query":tru}"#,
        #"{"query" "x"}"#, #"{"query":"x" "y":1}"#, #"{,"query":"x"}"#, #"{"query":"x"}}"#, "", " ", "\u{FEFF}{}",
    ])
    func malformedJSONIs400(body: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
        #expect(answer.status == 400, "\(body.prefix(40)): \(answer.text)")
        #expect(answer.text.contains("not valid JSON"), "\(body.prefix(40)): \(answer.text)")
    }

    /// Deep nesting is refused by the grammar check (iterative), before Foundation's recursive parser sees it.
    @Test func deepNestingIs400() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        for body in [
            String(repeating: "[", count: 513) + String(repeating: "]", count: 513),
            String(repeating: "[", count: 100_000), String(repeating: #"{"a":"#, count: 100_000),
        ] {
            let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
            #expect(answer.status == 400 && answer.text.contains("not valid JSON"), "\(answer.text)")
        }
        let deepest = String(repeating: "[", count: 511) + String(repeating: "]", count: 511)
        let answer = harness.send("POST", "/api/tasks", body: "{\"a\":\(deepest)}", contentType: "application/json")
        #expect(answer.text.contains("Unknown field(s): a."), "\(answer.text)")
    }

    @Test(arguments: [
        #"{"query":"x"}"#, #" {"query" : "x\n\u00e9\ud83d\ude00\/" } "#, "{\"query\":\"x\"}\r\n",
        #"{"query":"x","query":"y"}"#,
    ])
    func strictJSONStillAcceptsValidBodies(body: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
        #expect(answer.status == 202, "\(body): \(answer.text)")
    }

    @Test(arguments: [#""x""#, "null", "42", "[]", "[[1,2.5e-3,-0,true,false,null,{\"a\":[]}]]"])
    func aValidJSONValueThatIsNotAnObjectSaysSo(body: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
        #expect(answer.status == 400)
        #expect(answer.text.contains("must be a JSON object"), "\(body): \(answer.text)")
    }

    @Test(arguments: [#"{"query":null}"#, #"{"query":5}"#, #"{"query":["x"]}"#, #"{"query":{"a":"x"}}"#])
    func aQueryThatIsNotAStringSaysSo(body: String) {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
        #expect(answer.status == 400)
        let expected = #"{"error":{"type":"invalid_request","message":"\"query\" must be a string."}}"#
        #expect(answer.text == expected, "\(body)")
    }

    @Test func ofARepeatedQueryTheFirstCountsAsInForms() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let body = #"{"query":"first","query":"second"}"#
        let answer = harness.send("POST", "/api/tasks", body: body, contentType: "application/json")
        #expect(answer.status == 202)
        #expect(answer.text.contains(#""query":"first""#), "\(answer.text)")
    }

    @Test func listingCutsLongNames() {
        #expect(HTTPError.listing([]) == "")
        #expect(HTTPError.listing(["a"]) == "a")
        #expect(HTTPError.listing([String(repeating: "n", count: 50)]) == String(repeating: "n", count: 40) + "...")
        #expect(HTTPError.listing(["1", "2", "3", "4", "5", "6"]) == "1, 2, 3, 4, 5... (6 in all)")
    }
}
