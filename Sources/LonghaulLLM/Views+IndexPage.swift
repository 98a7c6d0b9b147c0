public import HTML
public import Longhaul
import Tasks

extension Views {
    /// The LLM demo's index page: the question form, a place for messages, and the list of tasks.
    ///
    /// htmx posts the form to `generate` and appends each new task at the end of `#result`, so earlier tasks stay
    /// above the new one. Error answers (blank query, busy server) go to `#messages` instead, replacing the previous
    /// message (static/app.js). Without JavaScript the form is an ordinary POST.
    /// - Returns: the page.
    public func indexPage() -> HTML {
        indexPage(idempotencyKey: TaskID.random().rawValue)
    }

    /// The index page with a given idempotency key for its form.
    func indexPage(idempotencyKey: String) -> HTML {
        page(
            """
            <form id="query-form" class="query-form" method="post" action="\(basePath)/generate" \
            hx-post="\(basePath)/generate" hx-target="#result" hx-swap="beforeend show:bottom">
            <label for="query">Your question</label>
            <div class="query-row">
            <input id="query" name="query" type="text" autocomplete="off" placeholder="Ask anything" \
            aria-describedby="query-hint">
            <button type="submit">Submit</button>
            </div>
            <input type="hidden" name="idempotency_key" value="\(idempotencyKey)">
            <p id="query-hint" class="hint">An answer can take up to a minute. Earlier answers stay on this page.</p>
            </form>
            <div id="messages" class="messages"></div>
            <div id="result" class="result" aria-live="polite"></div>
            """)
    }
}

/// The index page rendered once, around the one thing that differs per request: the form's fresh idempotency key.
struct IndexPageTemplate: Sendable {
    private let before: HTML
    private let after: HTML

    /// - Parameter views: the app's views.
    init(views: Views) {
        // A key no page text contains, to find where the real one goes: 22 characters like every key.
        let marker = "KEYMARKERKEYMARKERKEYM"
        let bytes = views.indexPage(idempotencyKey: marker).utf8
        let markerBytes = Array(marker.utf8)
        var split = 0
        for start in 0...(bytes.count - markerBytes.count)
        where bytes[start..<(start + markerBytes.count)].elementsEqual(markerBytes) {
            split = start
            break
        }
        precondition(split > 0, "the index page must contain its idempotency key")
        before = HTML(unsafeRaw: String(decoding: bytes[..<split], as: UTF8.self))
        after = HTML(unsafeRaw: String(decoding: bytes[(split + markerBytes.count)...], as: UTF8.self))
    }

    /// The page, with a new idempotency key.
    func render() -> HTML {
        HTML.write(capacity: before.utf8.count + after.utf8.count + TaskID.length) { html in
            html.append(fragment: before)
            html.appendEscaped(TaskID.random().rawValue)
            html.append(fragment: after)
        }
    }
}
