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
            <input type="hidden" name="idempotency_key" value="\(TaskID.random().rawValue)">
            <p id="query-hint" class="hint">An answer can take up to a minute. Earlier answers stay on this page.</p>
            </form>
            <div id="messages" class="messages"></div>
            <div id="result" class="result" aria-live="polite"></div>
            """)
    }
}
