// Longhaul page behaviour. A file, never an inline script, so the strict Content-Security-Policy holds.
'use strict';

// Forms that submit a question: the main form and the "Try again" / "Ask again" forms of finished tasks.
function isQuestionForm(elt) {
    return Boolean(elt && elt.matches && elt.matches('#query-form, form.retry'));
}

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
    // The next question gets a fresh idempotency token (the server remembers the old one: resubmitting the same
    // form, e.g. a double click or a retry after a network error, returns the same task instead of a second call).
    const token = elt.querySelector('input[name="idempotency_key"]');
    if (token && window.crypto && window.crypto.getRandomValues) {
        const bytes = new Uint8Array(16);
        window.crypto.getRandomValues(bytes);
        token.value = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    }
});

// Where answers go. A new task is appended to #result (earlier ones stay above it). A message (blank query, busy
// server, task store down) replaces whatever #messages showed, instead of piling up among the tasks or replacing a
// task that is still running (which would stop its polling). Only "Unknown or expired task" (404) replaces a task.
// A message caused by a task's poll is cleared by that task's next good answer; one caused by a question, by the
// next accepted question.
let focusWasInTask = false;
document.body.addEventListener('htmx:beforeSwap', (e) => {
    // (htmx fires beforeSwap on the target; the element that made the request is in requestConfig.)
    const elt = e.detail.requestConfig ? e.detail.requestConfig.elt : null;
    const xhr = e.detail.xhr;
    const messages = document.getElementById('messages');
    const status = xhr ? xhr.status : 0;
    const fromQuestion = isQuestionForm(elt);
    const fromTask = Boolean(elt && elt.closest && elt.closest('.task'));
    if (messages && e.detail.shouldSwap) {
        if (status >= 400 && (fromQuestion || status !== 404)) {
            e.detail.target = messages;
            e.detail.swapOverride = 'innerHTML';
            messages.dataset.source = fromQuestion ? 'question' : 'task';
        } else if (status >= 200 && status < 300 &&
            (fromQuestion || (fromTask && messages.dataset.source === 'task'))) {
            messages.replaceChildren();
            delete messages.dataset.source;
        }
    }
    // A task replaced while it had the focus (its Cancel or Try again button, say) hands the focus on to its
    // successor, so keyboard users keep their place.
    const target = e.detail.target;
    focusWasInTask = Boolean(
        target && target.classList && target.classList.contains('task') && target.contains(document.activeElement));
});
document.body.addEventListener('htmx:afterSwap', (e) => {
    const elt = e.target;
    if (!focusWasInTask || !elt || !elt.classList || !elt.classList.contains('task') || !elt.isConnected) {
        return;
    }
    focusWasInTask = false;
    if (document.activeElement && document.activeElement !== document.body) {
        return;
    }
    const button = elt.querySelector('button');
    if (button) {
        button.focus();
    } else {
        elt.setAttribute('tabindex', '-1');
        elt.focus();
    }
});

// The stream's own `error` event (the task failed; `done` with the failure follows at once) reaches the
// EventSource's onerror, which the SSE extension takes for a broken connection and logs as a console error.
// Stop such server-sent events before the extension sees them; real connection errors (plain Events) still pass.
if (window.htmx && typeof htmx.createEventSource === 'function') {
    const createEventSource = htmx.createEventSource;
    htmx.createEventSource = (url) => {
        const source = createEventSource(url);
        source.addEventListener('error', (e) => {
            if (e instanceof MessageEvent) {
                e.stopImmediatePropagation();
            }
        });
        return source;
    };
}

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

// The time a pending task has been waiting, kept ticking (checked four times a second, so it turns on time). The
// server renders it with the task's creation time (data-created-at) and its own clock (data-server-time);
// measuring from the server's clock keeps the count right when this computer's clock is off.
const clockOffsets = new WeakMap();

function formatElapsed(seconds) {
    if (seconds < 60) {
        return `${seconds} s`;
    }
    const rest = seconds % 60;
    return `${Math.floor(seconds / 60)} min ${rest < 10 ? '0' : ''}${rest} s`;
}

function tickElapsed() {
    for (const task of document.querySelectorAll('.task-pending[data-created-at]')) {
        const out = task.querySelector('.elapsed');
        const created = Date.parse(task.dataset.createdAt);
        if (!out || Number.isNaN(created)) {
            continue;
        }
        if (!clockOffsets.has(task)) {
            const server = Date.parse(task.dataset.serverTime);
            clockOffsets.set(task, Number.isNaN(server) ? 0 : Date.now() - server);
        }
        const seconds = Math.max(0, Math.floor((Date.now() - clockOffsets.get(task) - created) / 1000));
        const text = formatElapsed(seconds);
        if (out.textContent !== text) {
            out.textContent = text;
        }
    }
}

document.body.addEventListener('htmx:load', tickElapsed);
setInterval(tickElapsed, 250);
tickElapsed();

// Copy buttons for a finished answer: one on each code block, one for the whole answer (its Markdown source, from
// the <template class="answer-source"> the server sends with it). They are added here, so there are none without
// JavaScript; htmx:load fires for every element htmx inserts (and once for the body), so each answer is handled
// once, when it arrives, however many answers the page holds.
let copyStatus = null;

function announce(text) {
    if (!copyStatus) {
        copyStatus = document.createElement('span');
        copyStatus.className = 'visually-hidden';
        copyStatus.setAttribute('role', 'status');
        document.body.appendChild(copyStatus);
    }
    copyStatus.textContent = '';
    copyStatus.textContent = text;
}

function copyButton(label, accessibleName) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = label;
    button.dataset.label = label;
    button.setAttribute('aria-label', accessibleName);
    return button;
}

function enhanceAnswer(answer) {
    if (answer.dataset.enhanced) {
        return;
    }
    answer.dataset.enhanced = 'true';
    for (const pre of answer.querySelectorAll('pre')) {
        const code = pre.querySelector('code');
        const language = code && /(?:^|\s)language-(\S+)/.exec(code.className);
        const wrapper = document.createElement('div');
        wrapper.className = 'code-block';
        pre.replaceWith(wrapper);
        wrapper.append(pre, copyButton('Copy', language ? `Copy ${language[1]} code` : 'Copy code'));
    }
    // A block that scrolls sideways must be reachable by keyboard to be scrolled.
    for (const block of answer.querySelectorAll('pre, table')) {
        if (block.scrollWidth > block.clientWidth) {
            block.tabIndex = 0;
        }
    }
    if (answer.parentElement && answer.parentElement.querySelector('template.answer-source')) {
        const actions = document.createElement('p');
        actions.className = 'answer-actions';
        actions.append(copyButton('Copy answer', 'Copy the whole answer'));
        answer.after(actions);
    }
}

function enhanceAnswers(root) {
    if (!root || !root.querySelectorAll) {
        return;
    }
    if (root.matches && root.matches('.result-text.markdown')) {
        enhanceAnswer(root);
    }
    for (const answer of root.querySelectorAll('.result-text.markdown')) {
        enhanceAnswer(answer);
    }
}

// Copies text with the Clipboard API, or with a selected textarea and execCommand where that API is missing (an
// older browser, or a page not served over HTTPS).
async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
        try {
            await navigator.clipboard.writeText(text);
            return true;
        } catch (err) {
            // Denied or unavailable: try the fallback.
        }
    }
    const buffer = document.createElement('textarea');
    buffer.className = 'copy-buffer';
    buffer.value = text;
    buffer.setAttribute('readonly', '');
    buffer.setAttribute('aria-hidden', 'true');
    const focused = document.activeElement;
    document.body.appendChild(buffer);
    buffer.select();
    let copied = false;
    try {
        copied = document.execCommand('copy');
    } catch (err) {
        copied = false;
    }
    buffer.remove();
    if (focused && focused.focus) {
        focused.focus();
    }
    return copied;
}

function textToCopy(button) {
    const block = button.closest('.code-block');
    if (block) {
        const code = block.querySelector('pre code') || block.querySelector('pre');
        // The block's text as written in the answer: cmark ends every code block with a line break.
        return code.textContent.replace(/\n$/, '');
    }
    const task = button.closest('.task');
    const source = task && task.querySelector('template.answer-source');
    return source ? source.content.textContent : '';
}

document.body.addEventListener('click', async (e) => {
    const button = e.target.closest ? e.target.closest('button.copy') : null;
    if (!button) {
        return;
    }
    const copied = await copyText(textToCopy(button));
    button.textContent = copied ? 'Copied' : 'Copy failed';
    button.classList.toggle('copied', copied);
    announce(copied ? 'Copied to the clipboard' : 'Could not copy');
    clearTimeout(Number(button.dataset.timer));
    button.dataset.timer = String(setTimeout(() => {
        button.textContent = button.dataset.label;
        button.classList.remove('copied');
    }, 2000));
});

document.body.addEventListener('htmx:load', (e) => enhanceAnswers(e.detail && e.detail.elt));
enhanceAnswers(document.body);
