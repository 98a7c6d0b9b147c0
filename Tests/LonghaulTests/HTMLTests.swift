import HTML
import Testing

@Suite(.timeLimit(.minutes(2))) struct HTMLTests {
    @Test func interpolatedValuesAreEscaped() {
        let hostile = #"<script>alert("x")</script> & 'q'"#
        let html: HTML = "<p>\(hostile)</p>"
        #expect(html.rendered == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;</p>")
    }

    @Test func nestedHTMLIsNotEscapedTwice() {
        let inner: HTML = "<b>\("a<b")</b>"
        let outer: HTML = "<div>\(inner)</div>"
        #expect(outer.rendered == "<div><b>a&lt;b</b></div>")
    }

    @Test func joinedKeepsFragmentsAndEscapesNothingElse() {
        let parts: [HTML] = ["<i>\("1")</i>", "<i>\("<2>")</i>"]
        #expect(HTML.joined(parts, separator: " · ").rendered == "<i>1</i> · <i>&lt;2&gt;</i>")
    }
}
