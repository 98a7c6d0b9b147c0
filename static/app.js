// Longhaul page behaviour. A file, never an inline script, so the strict Content-Security-Policy holds.
'use strict';

// Empty the question form once htmx has posted it and the task was accepted. The page's htmx config swaps 4xx
// and 503 fragments (readable messages) and so counts them as successful too: keep the text for those, so the
// user can fix or resubmit it.
document.body.addEventListener('htmx:afterRequest', (e) => {
    const elt = e.detail.elt;
    const xhr = e.detail.xhr;
    if (!elt || elt.id !== 'query-form' || !e.detail.successful) {
        return;
    }
    if (xhr && (xhr.status < 200 || xhr.status >= 300)) {
        return;
    }
    elt.reset();
});

// A pending task streams its text over server-sent events (htmx SSE extension) and also polls `check` every
// second. While its stream is open the polls are skipped (a swap would restart the stream); when the stream fails
// or closes they resume, so polling is the fallback. A `check` triggered by the stream itself (`done`, or `reset`
// when another backend process restarted the task) always goes through.
document.body.addEventListener('htmx:sseOpen', (e) => {
    e.target.dataset.streaming = 'open';
});
for (const name of ['htmx:sseError', 'htmx:sseClose']) {
    document.body.addEventListener(name, (e) => {
        delete e.target.dataset.streaming;
    });
}
document.body.addEventListener('htmx:beforeRequest', (e) => {
    const elt = e.detail.elt;
    if (!elt || !elt.classList.contains('task-pending') || elt.dataset.streaming !== 'open') {
        return;
    }
    const trigger = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    if (!trigger || (trigger.type !== 'sse:done' && trigger.type !== 'sse:reset')) {
        e.preventDefault();
    }
});
