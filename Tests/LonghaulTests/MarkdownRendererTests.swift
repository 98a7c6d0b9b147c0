import Foundation
import HTML
import Markdown
import Testing

@Suite(.timeLimit(.minutes(2))) struct MarkdownRendererTests {
    let renderer = MarkdownRenderer()

    func render(_ markdown: String) -> String {
        renderer.render(markdown).rendered
    }

    // MARK: - What is rendered

    @Test func headingsMoveDownTwoLevelsAndStopAtSix() {
        #expect(render("# Title") == "<h3>Title</h3>\n")
        #expect(render("### Three") == "<h5>Three</h5>\n")
        #expect(render("###### Six") == "<h6>Six</h6>\n")
    }

    @Test func emphasisStrongStrikethroughAndInlineCode() {
        #expect(
            render("*a* **b** ~~c~~ `d < e`")
                == "<p><em>a</em> <strong>b</strong> <del>c</del> <code>d &lt; e</code></p>\n")
    }

    @Test func aLineBreakInAParagraphStaysALineBreak() {
        #expect(render("line one\nline two") == "<p>line one<br />\nline two</p>\n")
    }

    @Test func listsKeepTheirKindAndStart() {
        #expect(render("- a\n- b") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n")
        #expect(render("3. a\n4. b") == "<ol start=\"3\">\n<li>a</li>\n<li>b</li>\n</ol>\n")
    }

    @Test func fencedCodeKeepsItsLanguageAsAClassAndEscapesItsText() {
        let html = render("```python\nprint(\"<b>\") # & more\n```")
        #expect(
            html == "<pre><code class=\"language-python\">print(&quot;&lt;b&gt;&quot;) # &amp; more\n</code></pre>\n")
    }

    @Test func fencedCodeWithoutLanguageHasNoClass() {
        #expect(render("```\nx\n```") == "<pre><code>x\n</code></pre>\n")
    }

    @Test func tablesRenderWithAlignmentAttributesNotStyles() {
        let html = render("| a | b |\n|:-:|--:|\n| 1 | 2 |")
        #expect(html.contains("<table>"))
        #expect(html.contains("<th align=\"center\">a</th>"))
        #expect(html.contains("<td align=\"right\">2</td>"))
        #expect(!html.contains("style="))
    }

    @Test func linksInsideTableCellsKeepTheirLabelTargetAndRel() {
        // A table cell takes no custom node: its links are plain cmark links, still checked and given `rel`.
        let rel = "rel=\"noopener noreferrer nofollow\""
        #expect(
            render("a\n-|\nsee https://e.example now")
                .contains("<td>see <a href=\"https://e.example\" \(rel)>https://e.example</a> now</td>"))
        #expect(
            render("a\n-|\n[docs](https://d.example \"T\")")
                .contains("<td><a href=\"https://d.example\" \(rel) title=\"T\">docs</a></td>"))
        #expect(
            render("a\n-|\n![chart](https://i.example/c.png)")
                .contains("<td><a href=\"https://i.example/c.png\" \(rel)>chart</a></td>"))
        let refused = render("a\n-|\n[run](javascript:alert(1)) x")
        #expect(refused.contains("<td>run x</td>"))
        #expect(!refused.contains("javascript"))
    }

    @Test func relIsAddedOnlyToAnchorsNeverToText() {
        let html = render("`<a href=\"x\">` and <a href=\"y\">")
        #expect(!html.contains("rel="))
        #expect(!html.contains("<a "))
    }

    @Test func taskListsRenderDisabledCheckboxes() {
        let html = render("- [x] done\n- [ ] todo")
        #expect(html.contains("<input type=\"checkbox\" checked=\"\" disabled=\"\" /> done"))
        #expect(html.contains("<input type=\"checkbox\" disabled=\"\" /> todo"))
    }

    @Test func linksGetRelAndKeepTheirTitle() {
        let html = render("[docs](https://example.com/a?b=1&c=2 \"The \\\"docs\\\"\")")
        #expect(
            html
                == "<p><a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer nofollow\" "
                + "title=\"The &quot;docs&quot;\">docs</a></p>\n")
    }

    @Test func relativeLinksAndMailtoAreKept() {
        #expect(render("[a](/x#y)").contains("<a href=\"/x#y\" rel=\"noopener noreferrer nofollow\">a</a>"))
        #expect(render("[m](mailto:a@example.com)").contains("href=\"mailto:a@example.com\""))
        #expect(render("<https://example.com>").contains("<a href=\"https://example.com\" rel="))
    }

    @Test(arguments: [
        (
            "see www.example.com.",
            "<p>see <a href=\"http://www.example.com\" rel=\"noopener noreferrer nofollow\">www.example.com</a>.</p>\n"
        ),
        (
            "(https://example.com/a_(b))",
            "<p>(<a href=\"https://example.com/a_(b)\" rel=\"noopener noreferrer nofollow\">https://example.com/a_(b)</a>)</p>\n"
        ),
        (
            "https://example.com/?q=1&hl;",
            "<p><a href=\"https://example.com/?q=1\" rel=\"noopener noreferrer nofollow\">https://example.com/?q=1</a>&amp;hl;</p>\n"
        ),
        (
            "**www.example.com**",
            "<p><strong><a href=\"http://www.example.com\" rel=\"noopener noreferrer nofollow\">www.example.com</a></strong></p>\n"
        ),
        ("a www.x_y.com b", "<p>a www.x_y.com b</p>\n"),
        ("wwwexample.com http:/x", "<p>wwwexample.com http:/x</p>\n"),
        ("`www.example.com`", "<p><code>www.example.com</code></p>\n"),
    ])
    func bareAddressesBecomeLinksAsOnGitHub(_ markdown: String, _ expected: String) {
        #expect(render(markdown) == expected)
    }

    @Test func imagesAreNeverLoadedButShownAsLinks() {
        let html = render("![a cat](https://example.com/cat.png) ![](https://example.com/x.png)")
        #expect(!html.contains("<img"))
        #expect(
            html.contains(
                "<a href=\"https://example.com/cat.png\" rel=\"noopener noreferrer nofollow\" class=\"image-link\">a cat</a>"
            ))
        #expect(html.contains("class=\"image-link\">https://example.com/x.png</a>"))
    }

    @Test func anImageInsideALinkKeepsOnlyItsText() {
        let html = render("[![badge](https://example.com/b.svg)](https://example.com)")
        #expect(html == "<p><a href=\"https://example.com\" rel=\"noopener noreferrer nofollow\">badge</a></p>\n")
    }

    @Test func rawHTMLIsShownAsText() {
        #expect(render("a <b>bold</b> move") == "<p>a &lt;b&gt;bold&lt;/b&gt; move</p>\n")
        #expect(
            render("<div onclick=\"x()\">\nhi\n</div>")
                == "<p>&lt;div onclick=&quot;x()&quot;&gt;\nhi\n&lt;/div&gt;</p>\n")
    }

    @Test func tooLargeOrTooBracketyInputIsShownAsPlainText() {
        var configuration = MarkdownRenderer.Configuration()
        configuration.maxBytes = 10
        #expect(
            MarkdownRenderer(configuration: configuration).render("**bold** <i>x</i>").rendered
                == "<p class=\"plain-text\">**bold** &lt;i&gt;x&lt;/i&gt;</p>\n")
        let brackets = render(String(repeating: "![[]()", count: 20_000))
        #expect(brackets.hasPrefix("<p class=\"plain-text\">![[]()"))
    }

    // MARK: - Hostile input

    /// Inputs meant to get markup, script or a dangerous link through.
    static let hostile: [String] = [
        "<script>alert(1)</script>",
        "x <script>alert(1)</script> y",
        "<img src=x onerror=alert(1)>",
        "a <img src=x onerror=\"alert(1)\"> b",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x]( javascript:alert(1) )",
        "[x](<java\tscript:alert(1)>)",
        "[x](&#106;avascript:alert(1))",
        "[x](javascript&colon;alert(1))",
        "[x](&#x6A;&#x61;&#x76;&#x61;script:alert(1))",
        "[x](\\javascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](vbscript:msgbox(1))",
        "[x](file:///etc/passwd)",
        "<javascript:alert(1)>",
        "<JAVASCRIPT:alert(1)>",
        "<data:text/html,<script>alert(1)</script>>",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "![x](javascript:alert(1))",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "[x](https://example.com\" onmouseover=\"alert(1))",
        "[x](<https://example.com\" onmouseover=\"alert(1)>)",
        "[x](https://example.com 'a\" onmouseover=\"alert(1)')",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;img src=x onerror=alert(1)&#62;",
        "```\"><script>alert(1)</script>\nx\n```",
        "``` onload=alert(1)\nx\n```",
        "| <script>alert(1)</script> |\n|---|\n| <img src=x onerror=alert(1)> |",
        "- [x] <script>alert(1)</script>",
        "<!-- x --><script>alert(1)</script>",
        "<style>body{display:none}</style>",
        "<svg><script>alert(1)</script></svg>",
        "www.example.com/\"onmouseover=\"alert(1)",
        "https://example.com/<script>alert(1)</script>",
        "[x](https://example.com/\u{0}<script>)",
    ]

    /// Elements and attributes a rendered answer may contain; anything else is a leak.
    static let allowedTags: Set<String> = [
        "p", "h3", "h4", "h5", "h6", "ul", "ol", "li", "em", "strong", "del", "code", "pre", "a", "blockquote", "hr",
        "br", "table", "thead", "tbody", "tr", "th", "td", "input",
    ]
    static let allowedAttributes: Set<String> = [
        "href", "rel", "title", "class", "align", "start", "type", "checked", "disabled",
    ]

    @Test(arguments: hostile)
    func hostileMarkdownYieldsOnlyKnownElementsAndSafeLinks(_ markdown: String) throws {
        let html = render(markdown)
        try Self.checkSafe(html)
    }

    static func checkSafe(_ html: String) throws {
        let tag = try Regex(#"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>"#)
        let attribute = try Regex(#"([a-zA-Z-]+)(?:="([^"]*)")?"#)
        for match in html.matches(of: tag) {
            let name = String(match.output[2].substring ?? "").lowercased()
            #expect(allowedTags.contains(name), "unexpected element <\(name)> in \(html)")
            let attributes = String(match.output[3].substring ?? "")
            for found in attributes.matches(of: attribute) {
                let attributeName = String(found.output[1].substring ?? "").lowercased()
                #expect(allowedAttributes.contains(attributeName), "unexpected attribute \(attributeName) in \(html)")
                if attributeName == "href" {
                    let value = String(found.output[2].substring ?? "").lowercased()
                    let scheme = value.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
                    let hasScheme =
                        value.contains(":") && !scheme.contains("/") && !scheme.contains("?") && !scheme.contains("#")
                    #expect(!hasScheme || ["http", "https", "mailto"].contains(scheme), "unsafe href \(value)")
                }
                if attributeName == "rel" { #expect(found.output[2].substring == "noopener noreferrer nofollow") }
            }
        }
        #expect(!html.lowercased().contains("<script"))
        #expect(!html.lowercased().contains("<img"))
    }

    @Test(.timeLimit(.minutes(1))) func emphasisNestedTenThousandDeepRenders() throws {
        let depth = 10_000
        let html = render(String(repeating: "*", count: depth) + "deep" + String(repeating: "*", count: depth))
        #expect(html.contains("deep"))
        #expect(html.components(separatedBy: "<strong>").count - 1 == depth / 2)
        try Self.checkSafe(html)
        let mixed = render(String(repeating: "*_", count: depth) + "x" + String(repeating: "_*", count: depth))
        #expect(mixed.contains("x"))
    }

    @Test(.timeLimit(.minutes(1))) func aOneMegabyteLineRenders() throws {
        let line = String(repeating: "word *a* www.example.com ", count: 40_000)
        #expect(line.utf8.count >= 1_000_000)
        let html = render(line)
        #expect(html.hasPrefix("<p>word <em>a</em> <a href=\"http://www.example.com\""))
        #expect(html.components(separatedBy: "<em>").count - 1 == 40_000)
    }

    /// Inputs on which Debian's cmark-gfm 0.29.0.gfm.6 (or its autolink extension) is super-linear: they must
    /// come back, rendered or as text, without taking seconds.
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [
            String(repeating: "www._", count: 60_000), String(repeating: "![[]()", count: 30_000),
            String(repeating: "a@", count: 100_000), String(repeating: "http://a._/(", count: 30_000),
            String(repeating: "[a](", count: 50_000), String(repeating: ">", count: 10_000) + " a",
            String(repeating: "- ", count: 10_000) + "a",
            String(repeating: "|a", count: 2_000) + "|\n" + String(repeating: "|-", count: 2_000),
        ])
    func pathologicalInputStaysCheap(_ markdown: String) throws {
        let html = render(markdown)
        #expect(!html.isEmpty)
        try Self.checkSafe(html)
    }

    @Test(.timeLimit(.minutes(1))) func manyThreadsRenderAtOnceWithTheSameResults() async {
        let inputs = (0..<16).map {
            "# Answer \($0)\n\n~~old~~ **new** www.example.com/\($0)\n\n| a |\n|---|\n| \($0) |\n"
        }
        let expected = inputs.map(render)
        let renderer = self.renderer
        await withTaskGroup(of: Bool.self) { group in
            for round in 0..<64 {
                let index = round % inputs.count
                group.addTask { renderer.render(inputs[index]).rendered == expected[index] }
            }
            for await same in group { #expect(same) }
        }
        // The same across real threads, not only the cooperative pool.
        let mismatches = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 64) { round in
            let index = round % inputs.count
            if renderer.render(inputs[index]).rendered != expected[index] { mismatches.increment() }
        }
        #expect(mismatches.value == 0)
    }
}

/// A counter threads may bump at once.
private final class LockedCounter: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
