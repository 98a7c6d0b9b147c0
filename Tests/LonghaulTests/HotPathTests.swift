import FastCGI
import Foundation
import HTML
import StandardExtensions
import Tasks
import Testing

@testable import Longhaul

/// The request path's byte-level pieces (issue 15) against the general code they stand in for: the HTML writer
/// against interpolation, task ids against Foundation's base64, parameters copied from a C environment against
/// the entry-by-entry copy, literal routes against the pattern walk.
@Suite(.timeLimit(.minutes(2))) struct HotPathTests {
    private static let awkward = [
        "", "plain", #"<script>alert("x")</script> & 'q'"#, "é ü 漢字 🙂", "&&&&", "a\u{0}b", "\"'<>&",
        String(repeating: "<", count: 500),
    ]

    @Test(arguments: awkward)
    func theWriterEscapesAsInterpolationDoes(text: String) {
        let interpolated: HTML = "<p title=\"\(text)\">\(text)</p>"
        let written = HTML.write(capacity: 1) { html in
            html.append("<p title=\"")
            html.appendEscaped(text)
            html.append("\">")
            html.appendEscaped(text)
            html.append("</p>")
        }
        #expect(written == interpolated)
    }

    /// The writer's word-at-a-time scan for bytes to escape, on random text from an alphabet of the five, their
    /// neighbours (one bit off) and bytes beyond ASCII, at every length and alignment up to 40.
    @Test func theWriterEscapesRandomTextAsInterpolationDoes() {
        let alphabet: [Character] = ["&", "<", ">", "\"", "'", "%", "=", "?", "!", "#", "a", "é", "\u{0}", "\u{7F}"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let text = String(
                (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator)!
                })
            let prefix = String(repeating: "x", count: Int.random(in: 0...7, using: &generator))
            let interpolated: HTML = "\(prefix + text)"
            let written = HTML.write(capacity: 1) { $0.appendEscaped(prefix + text) }
            #expect(written == interpolated, "\(text.debugDescription)")
        }
    }

    @Test func theWriterGrowsPastItsCapacityAndKeepsFragments() {
        let fragment: HTML = "<b>\("x<y")</b>"
        let written = HTML.write(capacity: 8) { html in
            for _ in 0..<1000 { html.append(fragment: fragment) }
        }
        #expect(written.rendered == String(repeating: "<b>x&lt;y</b>", count: 1000))
    }

    @Test(arguments: [0, 7, 10, 59, 1_000_000, -1, -42, Int.max, Int.min])
    func theWriterWritesNumbersInDecimal(value: Int) {
        #expect(HTML.write(capacity: 0) { $0.append(value) }.rendered == String(value))
    }

    @Test func taskIDsAreBase64URLOfTheirBits() throws {
        var generator = SplitMix(seed: 0x5EED)
        for _ in 0..<2000 {
            var copy = generator
            let id = TaskID.random(using: &generator)
            let high = copy.next()
            let low = copy.next()
            var bytes = [UInt8]()
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: high >> shift)) }
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: low >> shift)) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(id.rawValue == expected)
            #expect(TaskID(id.rawValue) == id)
        }
        let fresh = (0..<100).map { _ in TaskID.random() }
        #expect(Set(fresh).count == 100)
        #expect(fresh.allSatisfy { TaskID($0.rawValue) == $0 })
    }

    /// The well-known parameters, noted while the entries are stored, read what a search by name reads: the last
    /// entry of that name, none when absent, whichever way the parameters were built.
    @Test(arguments: [
        ["REQUEST_METHOD=GET", "QUERY_STRING=a=1", "REQUEST_METHOD=POST", "NOEQUALS", "CONTENT_TYPE=", "X=1"],
        ["DOCUMENT_URI=/check", "REQUEST_URI=/check?x", "CONTENT_LENGTH=12", "CONTENT_TYPEX=no", "REQUEST_URIS=no"],
        ["QUERY_STRING", "CONTENT_LENGTH=1", "CONTENT_LENGTH=2", "DOCUMENT_URL=/no", "QUERY_STRINH=no"],
        ["HTTP_\u{00C9}=accent", "QUERY_STRING=b=2", "REQUEST_METHOD=HEAD"],
        ["QUERY_STRING=\u{00E9}=1", "HTTP_X_K\u{212A}=k", "REQUEST_METHOD\u{0301}=no", "\u{212A}=k", "DOCUMENT_URI=/"],
        [],
    ])
    func wellKnownParametersReadWhatASearchReads(entries: [String]) {
        let copies = entries.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        let fromC = (copies + [nil]).withUnsafeBufferPointer { FastCGIParameters(cEnvironment: $0.baseAddress!) }
        let fromEntries = FastCGIParameters(
            environment: copies.map {
                UnsafeBufferPointer(
                    start: UnsafeRawPointer($0!).assumingMemoryBound(to: UInt8.self), count: strlen($0!))
            })
        let fromDictionary = FastCGIParameters(fromC.dictionary)
        for parameters in [fromC, fromEntries, fromDictionary] {
            for name in FastCGIParameters.WellKnown.allCases {
                #expect(parameters[name] == parameters[name.name], "\(name)")
                #expect(parameters.valueBytes(name) == name.name.withUTF8Buffer { parameters.valueBytes(named: $0) })
            }
        }
        let last = entries.last { $0.hasPrefix("REQUEST_METHOD=") }.map { String($0.dropFirst(15)) }
        #expect(fromC[.requestMethod] == last)
    }

    /// What the well-known look-up relies on (`FastCGIParameters.valueRange(_:)`): the only scalars beyond ASCII
    /// that equal an ASCII character as a `String` are U+212A, U+037E and U+1FEF ("K", ";", "`"), none of which
    /// is in a well-known name. (A sequence with any other scalar beyond ASCII keeps one in every normal form.)
    @Test func onlyThreeScalarsBeyondASCIIEqualAnASCIICharacter() {
        // String hashing agrees with String equality (canonical equivalence).
        let ascii = Set((0..<128).map { String(UnicodeScalar(UInt8($0))) })
        var equal: [UInt32] = []
        for value in UInt32(0x80)...0x10FFFF {
            guard let scalar = UnicodeScalar(value) else { continue }
            if ascii.contains(String(scalar)) { equal.append(value) }
        }
        #expect(equal == [0x037E, 0x1FEF, 0x212A])
        for name in FastCGIParameters.WellKnown.allCases {
            let text = name.name.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            #expect(!text.contains { "K;`".contains($0) })
        }
    }

    @Test func parametersFromACEnvironmentMatchTheEntryByEntryCopy() {
        let entries = [
            "REQUEST_METHOD=GET", "QUERY_STRING=task_id=abc&x=%20", "NOEQUALS", "EMPTY=", "=nameless",
            "DOCUMENT_URI=/check", "HTTP_X_K\u{212A}=kelvin", "REQUEST_METHOD=POST", "HTTP_ACCEPT=a=b=c",
            "HTTP_\u{00E9}T\u{00C9}=accent",
        ]
        let copies = entries.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        let environment = copies + [nil]
        let fromC = environment.withUnsafeBufferPointer { FastCGIParameters(cEnvironment: $0.baseAddress!) }
        let fromEntries = FastCGIParameters(
            environment: copies.map {
                UnsafeBufferPointer(
                    start: UnsafeRawPointer($0!).assumingMemoryBound(to: UInt8.self), count: strlen($0!))
            })
        #expect(fromC.dictionary == fromEntries.dictionary)
        #expect(fromC["REQUEST_METHOD"] == "POST")
        #expect(fromC["EMPTY"] == "")
        #expect(fromC["NOEQUALS"] == nil)
        #expect(fromC["HTTP_ACCEPT"] == "a=b=c")
        #expect(fromC.header("X-K") == nil)
        // Names that are not ASCII are found by String equality, as in a dictionary: the copy must notice them,
        // past its first eight bytes (the Kelvin sign) as within them (the É).
        #expect(fromC["HTTP_X_KK"] == "kelvin")
        #expect(fromC["HTTP_e\u{0301}TE\u{0301}"] == "accent")
        // A name whose only non-ASCII bytes are within its first eight.
        let eight = strdup("HTTP_\u{00C9}X=eight")
        defer { free(eight) }
        let onlyEight = [eight, nil].withUnsafeBufferPointer { FastCGIParameters(cEnvironment: $0.baseAddress!) }
        #expect(onlyEight["HTTP_E\u{0301}X"] == "eight")
        #expect(FastCGIParameters(cEnvironment: [nil]).dictionary.isEmpty)
    }

    @Test(arguments: ["/check", "/check/", "//check", "/check//", "/", "", "/api/x"])
    func literalRoutesAnswerEveryPathThePatternWalkDid(path: String) {
        var router = Router()
        router.add("GET", "/") { _ in .text("index") }
        router.add("GET", "/check") { _ in .text("check") }
        router.add("POST", "/check") { _ in .text("post check") }
        router.add("GET", "/api/:name") { request in .text("api \(request.pathParameters["name"] ?? "")") }
        let expected: [String: (Int, String)] = [
            "/check": (200, "check"), "/check/": (200, "check"), "//check": (200, "check"),
            "/check//": (200, "check"), "/": (200, "index"), "": (200, "index"), "/api/x": (200, "api x"),
        ]
        for method in ["GET", "HEAD", "POST", "PUT"] {
            let response = router.respond(
                to: FastCGIRequest(params: ["REQUEST_METHOD": method, "DOCUMENT_URI": path, "REQUEST_URI": path]))
            guard let bytes = response.body.completeBytes else {
                Issue.record("no body")
                continue
            }
            let text = String(decoding: bytes, as: UTF8.self)
            switch method {
            case "GET", "HEAD":
                #expect(response.status == expected[path]?.0)
                #expect(text == expected[path]?.1)
            case "POST" where path.contains("check"):
                #expect(text == "post check")
            default:
                #expect(response.status == 405)
            }
        }
    }
}

extension HotPathTests {
    @Test(arguments: [("", false), ("/tools/a\"b", true)])
    func thePendingFragmentIsTheMarkupInterpolationGave(basePath: String, cancelling: Bool) throws {
        let views = Views(basePath: basePath)
        var record = TaskRecord(
            id: .random(), kind: "llm", input: #"<b>"q" & 'a'</b>"#,
            createdAt: Date(timeIntervalSince1970: 1_700_000_000.5))
        record.status = .running
        record.output = "so <far> 🙂"
        record.cancelRequested = cancelling
        let id = record.id.rawValue
        let base = HTML.escape(basePath)
        let status = cancelling ? "Cancelling..." : "Processing..."
        let expected = """
            <div id="task-\(id)" class="task task-pending" aria-busy="true" \
            data-created-at="2023-11-14T22:13:20.500Z" data-server-time="SERVER-TIME" \
            hx-get="\(base)/check?task_id=\(id)" \
            hx-trigger="sse:done, sse:reset, every 1s" hx-swap="outerHTML" \
            hx-ext="sse" sse-connect="\(base)/stream?task_id=\(id)&from=10" sse-close="done">
            <p class="query"><span class="visually-hidden">Task: </span>&lt;b&gt;&quot;q&quot; &amp; &#39;a&#39;&lt;/b&gt;</p>
            <p class="status">\(status) <span class="elapsed" role="timer">ELAPSED</span></p>
            <div class="result-text partial" sse-swap="delta" hx-swap="beforeend">so &lt;far&gt; 🙂</div>
            <form class="cancel" method="post" action="\(base)/cancel?task_id=\(id)" \
            hx-post="\(base)/cancel?task_id=\(id)" hx-target="#task-\(id)" hx-swap="outerHTML">
            <button type="submit">Cancel</button>
            </form>
            </div>
            """
        // The fragment as `taskFragment` gives it, and as the body `check` sends (written into a block).
        let body = try #require(views.taskFragmentBody(record).completeBytes)
        guard case .block = views.taskFragmentBody(record) else {
            Issue.record("a pending task's body is not written into a block")
            return
        }
        for rendered in [views.taskFragment(record).rendered, String(decoding: body, as: UTF8.self)] {
            let serverTime = try #require(rendered.firstMatch(of: /data-server-time="([0-9T:.\-]+Z)"/)).1
            let elapsed = try #require(rendered.firstMatch(of: /role="timer">([0-9]+ min [0-9]{2} s)</)).1
            #expect(Int(elapsed.prefix { $0 != " " }).map { $0 > 1_000_000 } == true)
            #expect(
                rendered.replacingOccurrences(of: String(serverTime), with: "SERVER-TIME")
                    .replacingOccurrences(of: ">\(elapsed)<", with: ">ELAPSED<") == expected)
        }
    }

    /// A finished task's body is its fragment as it is (not written into a block).
    @Test func aFinishedTaskBodyIsItsFragment() throws {
        let views = Views(basePath: "")
        var record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        record.status = .succeeded
        record.output = "an <answer>"
        record.finishedAt = Date()
        #expect(views.taskFragmentBody(record).completeBytes == views.taskFragment(record).utf8)
    }

    /// Blocks hold what they were given; a fragment written past its capacity is the same in a block.
    @Test func byteBlocksHoldTheirBytesAndGrownFragmentsMatch() {
        let bytes = Array("a block of bytes".utf8)
        let block = bytes.withUnsafeBytes { ByteBlock(copying: $0) }
        #expect(block.count == bytes.count)
        #expect(block.array == bytes)
        #expect(ByteBlock(copying: UnsafeRawBufferPointer(start: nil, count: 0)).array == [])
        let fragment: HTML = "<b>\("x<y")</b>"
        for capacity in [0, 8, 20_000] {
            let written = HTML.writeBlock(capacity: capacity) { html in
                for _ in 0..<1000 { html.append(fragment: fragment) }
                html.append(-42)
            }
            #expect(written.array == Array((String(repeating: "<b>x&lt;y</b>", count: 1000) + "-42").utf8))
        }
    }

    /// The texts copied without escaping (``HTML/SafeText``) never hold a byte HTML escapes, and are the texts
    /// their types give elsewhere.
    @Test func safeTextsNeedNoEscaping() {
        for _ in 0..<500 {
            let id = TaskID.random()
            let written = HTML.write(capacity: 0) { $0.append(id) }
            #expect(written.rendered == id.rawValue)
            #expect(HTML.escape(written.rendered) == written.rendered)
            #expect(id.withUTF8 { TaskID(utf8: $0) } == id)
        }
        let dates = [-1e12, -978_307_201, 0, 1_700_000_000.5, 253_402_300_799.999, 253_402_300_800, 1e13]
        for seconds in dates {
            let date = Date(timeIntervalSince1970: seconds)
            let written = HTML.write(capacity: 0) { $0.append(RFC3339Timestamp(date: date)) }
            #expect(written.rendered == date.rfc3339)
            #expect(HTML.escape(written.rendered) == written.rendered, "\(written.rendered)")
        }
        // The current time's text, kept per thread for its second: the same text whether it was kept or not, for
        // the same second again, another millisecond of it, and other seconds.
        let moments = [1_700_000_000.5, 1_700_000_000.5, 1_700_000_000.001, 1_700_000_000.999, 1_700_000_001, 0, 1e13]
        for seconds in moments + moments.reversed() {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(
                HTML.write(capacity: 0) { $0.append(RFC3339Timestamp(date: date, isNow: true)) }.rendered
                    == date.rfc3339)
        }
    }

    /// Methods read as literals are the methods sent; others are read as they are.
    @Test(arguments: ["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "get", "GETS", "", "OPTIONS"])
    func methodsAreReadAsSent(method: String) {
        #expect(FastCGIRequest(params: ["REQUEST_METHOD": method]).method == method)
    }

    /// Under a base path, literal routes answer as the walk does: the base itself is the index, paths outside it
    /// are not found, and a path that only starts with the base's text is not below it.
    @Test(arguments: ["/tools/ask", "/tools/ask/", "/tools/ask/check", "/tools/askcheck", "/check", "/other/check"])
    func literalRoutesUnderABasePath(path: String) {
        var router = Router(basePath: "/tools/ask/")
        router.add("GET", "/") { _ in .text("index") }
        router.add("GET", "/check") { _ in .text("check") }
        let expected: [String: String] = [
            "/tools/ask": "index", "/tools/ask/": "index", "/tools/ask/check": "check", "/check": "check",
        ]
        let response = router.respond(
            to: FastCGIRequest(params: ["REQUEST_METHOD": "GET", "DOCUMENT_URI": path, "REQUEST_URI": path]))
        let text = response.body.completeBytes.map { String(decoding: $0, as: UTF8.self) }
        if let answer = expected[path] {
            #expect(response.status == 200)
            #expect(text == answer)
        } else {
            #expect(response.status == 404)
        }
    }
}

extension HotPathTests {
    @Test func aCapturingRouteAddedFirstStillAnswersALiteralPathItMatches() {
        var router = Router()
        router.add("GET", "/api/tasks/:id") { request in .text("capture \(request.pathParameters["id"] ?? "")") }
        router.add("GET", "/api/tasks/stats") { _ in .text("literal") }
        router.add("POST", "/api/tasks/stats") { _ in .text("literal post") }
        func answer(_ method: String) -> String {
            let response = router.respond(
                to: FastCGIRequest(params: ["REQUEST_METHOD": method, "DOCUMENT_URI": "/api/tasks/stats"]))
            guard let bytes = response.body.completeBytes else { return "" }
            return String(decoding: bytes, as: UTF8.self)
        }
        #expect(answer("GET") == "capture stats")
        #expect(answer("POST") == "literal post")
    }
}

/// A seeded generator (SplitMix64), so that ids can be checked against their bits.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
