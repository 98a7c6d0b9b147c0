// markdown-bench: how long the backend takes to render a long Markdown answer (scripts/bench part 7).
//
// Usage: swift run -c release MarkdownBench [--words N] [--runs N]
//
// Builds a realistic answer of N words (headings, paragraphs with emphasis, inline code and links, lists, fenced
// code, tables), renders it RUNS times with MarkdownRenderer and with the whole finished-task fragment
// (Views.taskFragment: the rendered answer plus its escaped source for Copy answer), and prints one JSON line:
// {"kind":"markdown","words":…,"bytes":…,"html_bytes":…,"runs":…,"render_ms":{"median","p90","max"},
//  "fragment_ms":{…},"render_cpu_ms":{…},"fragment_cpu_ms":{…}}: wall-clock and this thread's CPU time (the latter
// does not count time the thread waited for a core on a busy machine). It reports; it asserts nothing.
import Foundation
import Glibc
import HTML
import Longhaul
import LonghaulLLM
import Markdown
import Tasks

func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count,
        let number = Int(arguments[index + 1])
    else { return value }
    return number
}

/// A Markdown answer of about `words` words, built from one varied section repeated.
func answer(words: Int) -> String {
    let section = """
        ## Step NUMBER: configure the service

        To run the service behind **nginx**, set `fastcgi_buffering off` for the *streaming* locations and keep the \
        socket private; see [the manual](https://nginx.org/en/docs/) and www.example.com/docs for the details. \
        A ~~quick~~ careful check first:

        1. Install the packages with `apt-get install nginx spawn-fcgi`.
        2. Copy the snippets to `/etc/nginx/snippets/` and reload.
        3. Watch the logs while the first requests arrive.

        - [x] socket mode 0660
        - [ ] TLS certificate renewed

        ```swift
        let server = try FastCGIServer(configuration: .init(), logger: logger)
        for step in 1...20 { try await Task.sleep(for: .seconds(1)); print("step \\(step) of 20") }
        ```

        | Setting | Default | Meaning |
        |:--|--:|:-:|
        | `--max-in-flight` | 64 | calls at once |
        | `--result-ttl` | 3600 | seconds kept |

        > A result is kept for an hour, then swept; the JSON API returns the raw text.

        """
    var text = ""
    var count = 0
    var number = 1
    while count < words {
        let piece = section.replacingOccurrences(of: "NUMBER", with: String(number))
        count += piece.split(whereSeparator: \.isWhitespace).count
        text += piece
        number += 1
    }
    return text
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// This thread's CPU time so far, in milliseconds.
func threadCPUMilliseconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Double(now.tv_sec) * 1000 + Double(now.tv_nsec) / 1e6
}

/// Runs `body` once; its wall-clock and CPU time in milliseconds.
func measure(_ body: () -> Void) -> (wall: Double, cpu: Double) {
    let cpuStart = threadCPUMilliseconds()
    let wall = milliseconds(ContinuousClock().measure(body))
    return (wall, threadCPUMilliseconds() - cpuStart)
}

func summary(_ samples: [Double]) -> String {
    let sorted = samples.sorted()
    let median = sorted[sorted.count / 2]
    let p90 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.9))]
    return String(format: #"{"median":%.3f,"p90":%.3f,"max":%.3f}"#, median, p90, sorted.last ?? 0)
}

let words = option("--words", default: 20_000)
let runs = max(1, option("--runs", default: 30))
let markdown = answer(words: words)
let renderer = MarkdownRenderer()
let views = Views(basePath: "", presentation: .llm)
var record = TaskRecord(id: TaskID.random(), kind: LLMJob.kind, input: "How do I deploy it?", createdAt: Date())
record.status = .succeeded
record.output = markdown
record.finishedAt = Date()

var htmlBytes = 0
_ = renderer.render(markdown)  // warm-up: registration of cmark-gfm's extensions, page faults
var render: [(wall: Double, cpu: Double)] = []
var fragment: [(wall: Double, cpu: Double)] = []
for _ in 0..<runs {
    var html = ""
    render.append(measure { html = renderer.render(markdown).rendered })
    htmlBytes = html.utf8.count
    fragment.append(measure { _ = views.taskFragment(record) })
}
let actualWords = markdown.split(whereSeparator: \.isWhitespace).count
print(
    #"{"kind":"markdown","words":\#(actualWords),"bytes":\#(markdown.utf8.count),"html_bytes":\#(htmlBytes),"#
        + #""runs":\#(runs),"render_ms":\#(summary(render.map(\.wall))),"fragment_ms":\#(summary(fragment.map(\.wall))),"#
        + #""render_cpu_ms":\#(summary(render.map(\.cpu))),"fragment_cpu_ms":\#(summary(fragment.map(\.cpu)))}"#)
