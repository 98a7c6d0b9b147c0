#!/usr/bin/env python3
"""Drives the real page in headless Chromium (Playwright, the system's /usr/bin/chromium) through nginx over TLS.

Usage: Tests/Browser/page_check.py BASE_URL CA_CERT [SCREENSHOT_DIR]

Prints one `name=value` line per observation; Tests/EndToEnd/test_40_browser.sh asserts on them. Saves a PNG of
each state it goes through to SCREENSHOT_DIR (when given). Exits 2 when the browser cannot be driven at all.

Every wait is bounded (a deadline, then the observation records what was seen); nothing depends on how fast the
stack is. The page's CSP forbids eval, so conditions are polled from here rather than with wait_for_function.
"""
import importlib.util
import json
import os
import re
import secrets
import sys
import time
from urllib.parse import urlsplit

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:
    print("error=playwright is not installed (scripts/lib.sh ensure_browser)")
    sys.exit(2)

DESKTOP = {"width": 1000, "height": 760}
MOBILE = {"width": 390, "height": 780}

# Foreground/background pairs to measure: every text style of the page that is present when measured.
CONTRAST_SELECTORS = [
    "h1 a", "label[for=query]", ".hint", "#query", "#query-form button", ".message-error p", ".task .query",
    ".status", ".elapsed", ".result-text", ".result-text.partial", ".task .details", ".task-failed h2",
    ".task-failed .summary", ".task-failed .reason", ".task-cancelled h2", ".task-cancelled p", "form.cancel button",
    "form.retry button", ".task-unknown p",
]

# The rendered answer's text styles, in a task whose id replaces ID.
MARKDOWN_CONTRAST_SELECTORS = [
    "#ID .markdown pre code", "#ID .markdown p code", "#ID .markdown h4", "#ID .markdown th", "#ID .markdown td",
    "#ID .markdown blockquote p", "#ID .markdown a", "#ID .markdown li", "#ID .code-block button.copy",
    "#ID .answer-actions button.copy",
]


def mock_markdown_reply():
    """The demo answer [mock:markdown] streams, from the mock's own source."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "mock", "anthropic_mock.py")
    spec = importlib.util.spec_from_file_location("anthropic_mock", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MARKDOWN_REPLY


def first_code_block(markdown):
    """The text of the first fenced code block of some Markdown, as a Copy button should put it on the clipboard."""
    match = re.search(r"^```[^\n]*\n(.*?)\n```$", markdown, re.S | re.M)
    return match.group(1) if match else None


# Runs in the page (through the DevTools protocol, which the CSP does not govern): the text colour and the
# effective background (the first opaque one up the tree) of the first element matching each selector.
COLOURS_JS = """(selectors) => {
    const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const out = [];
    for (const sel of selectors) {
        const el = document.querySelector(sel);
        if (!el) continue;
        let bg = null;
        for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
            const c = parse(getComputedStyle(n).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
        }
        out.push({sel, fg: parse(getComputedStyle(el).color).slice(0, 3), bg: bg || [255, 255, 255]});
    }
    return out;
}"""


def luminance(rgb):
    def channel(v):
        v = v / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg):
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def worst_contrast(page, selectors=None):
    """The lowest WCAG contrast ratio among the page's text styles, and which one it is."""
    pairs = page.evaluate(COLOURS_JS, selectors or CONTRAST_SELECTORS)
    if not pairs:
        return 0.0, "nothing measured"
    ratios = sorted((contrast(p["fg"], p["bg"]), p["sel"]) for p in pairs)
    return round(ratios[0][0], 2), f"{ratios[0][1]} ({len(pairs)} styles)"


def poll(fn, timeout, interval=0.1):
    """Calls fn until it returns something truthy or the deadline passes; returns its last value. Errors raised
    while the page navigates (meta refresh, form posts) count as "not yet"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except PlaywrightError:
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Shots:
    """Numbered screenshots of each state, in one folder."""

    def __init__(self, folder):
        self.folder = folder
        self.number = 0
        self.count = 0
        if folder:
            os.makedirs(folder, exist_ok=True)
            for old in os.listdir(folder):  # an earlier run's pictures
                if re.fullmatch(r"\d\d-[a-z-]+\.png", old):
                    os.remove(os.path.join(folder, old))

    def take(self, page, name, full_page=False):
        if not self.folder:
            return
        self.number += 1
        try:
            page.screenshot(path=os.path.join(self.folder, f"{self.number:02d}-{name}.png"), full_page=full_page)
            self.count += 1
        except PlaywrightError:
            pass  # a screenshot taken during a navigation: not counted; the observations still hold


class ErrorLog:
    """Console errors, page errors and CSP refusals of every page it watches. Chromium logs each 4xx answer as a
    console error; only the intended ones (400 from /generate for a blank query) are ignored."""

    def __init__(self):
        self.errors = []
        self.csp = []

    def watch(self, page):
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        return page

    def _console(self, message):
        text = message.text
        if "Content Security Policy" in text:
            self.csp.append(text)
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if "the server responded with a status of 400" in text and url.endswith("/generate"):
            return
        self.errors.append(text)


def task_ids(page):
    return page.eval_on_selector_all("#result > .task", "nodes => nodes.map(n => n.id)")


def ask(page, text):
    """Types a question and submits it with Enter, as a keyboard user does; returns the new task's id (or None)."""
    before = task_ids(page)
    page.fill("#query", text)
    page.press("#query", "Enter")
    new = poll(lambda: [i for i in task_ids(page) if i and i not in before], 10)
    return new[-1] if new else None


def text_of(page, selector):
    node = page.query_selector(selector)
    return node.inner_text() if node else ""


def tab_to(page, selector, presses=60):
    """Presses Tab until the focused element matches selector; whether it got there."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return True
    return False


def js_page_checks(browser, base, obs, shots, log):
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP, color_scheme="light")
    page = log.watch(context.new_page())
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto(base + "/")
    obs["title"] = page.title()
    obs["label_names_input"] = page.get_by_label("Your question").get_attribute("id")
    obs["result_aria_live"] = page.get_attribute("#result", "aria-live")
    obs["light_background"] = page.evaluate("getComputedStyle(document.body).backgroundColor")
    # Keyboard alone: Tab from the top of the page reaches the question field.
    obs["keyboard_reaches_input"] = tab_to(page, "#query", presses=10)
    shots.take(page, "index")

    # A blank question: the message shows in #messages, not among the tasks, and a second one replaces it.
    page.fill("#query", "   ")
    page.press("#query", "Enter")
    poll(lambda: page.query_selector("#messages .message-error"), 10)
    obs["empty_message"] = text_of(page, "#messages .message-error")
    if page.query_selector("#messages .message-error"):
        page.eval_on_selector("#messages .message-error", "n => n.classList.add('seen-before')")
    page.press("#query", "Enter")
    obs["empty_message_replaced"] = bool(poll(
        lambda: page.query_selector("#messages .message-error:not(.seen-before)"), 10))
    obs["empty_messages_shown"] = page.locator("#messages .message-error").count()
    obs["empty_messages_in_result"] = page.locator("#result .message-error, #result .message").count()
    obs["empty_query_kept"] = page.input_value("#query") == "   "
    shots.take(page, "empty-query")

    # A streamed answer: the elapsed time ticks and the text arrives in pieces, then the result replaces it.
    prompt = "browser stream [mock:latency=5] [mock:long=40]"
    first = ask(page, prompt)
    obs["form_reset"] = poll(lambda: page.input_value("#query") == "", 5)
    obs["messages_cleared"] = poll(lambda: page.locator("#messages > *").count() == 0, 5)
    obs["created_at_attribute"] = bool(re.match(r"^\d{4}-\d\d-\d\dT", page.get_attribute(
        f"#{first}", "data-created-at") or "")) if first else False
    pieces, elapsed = set(), set()
    shot = False
    light = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.query_selector(f"#{first}.task-pending"):
        try:
            part = text_of(page, f"#{first} .partial")
            if part:
                pieces.add(part)
            elapsed.add(text_of(page, f"#{first} .elapsed"))
            if part and not shot and len(pieces) >= 12:
                shots.take(page, "streaming")
                light = [worst_contrast(page)]
                shot = True
        except PlaywrightError:
            pass  # the fragment was swapped while being read
        time.sleep(0.05)
    obs["stream_pieces_seen"] = len(pieces)
    obs["elapsed_format"] = all(re.fullmatch(r"\d+ s|\d+ min \d\d s", e) for e in elapsed if e)
    obs["elapsed_values_seen"] = len([e for e in elapsed if e])
    poll(lambda: page.query_selector(f"#{first}.task-succeeded"), 30)
    obs["result"] = text_of(page, f"#{first}.task-succeeded .result-text")
    obs["result_white_space"] = page.evaluate(
        "(s) => { const n = document.querySelector(s); return n ? getComputedStyle(n).whiteSpace : ''; }",
        f"#{first} .result-text")
    obs["stream_requests"] = sum(f"/stream?task_id={first[5:]}" in u for u in requests) if first else 0
    obs["check_requests"] = sum(f"/check?task_id={first[5:]}" in u for u in requests) if first else 0
    shots.take(page, "result")

    # A second question on the same page: the first result stays, above the new one.
    second = ask(page, "browser second question")
    poll(lambda: page.query_selector(f"#{second}.task-succeeded"), 30)
    obs["second_result"] = text_of(page, f"#{second}.task-succeeded .result-text")
    obs["first_result_still_shown"] = text_of(page, f"#{first} .result-text") == obs["result"] != ""
    boxes = [page.locator(f"#{i}").bounding_box() for i in (first, second)] if first and second else []
    obs["first_above_second"] = bool(boxes and all(boxes) and boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"])
    shots.take(page, "second-question")

    # Model output with markup is text, and nothing in it runs.
    html = ask(page, "browser html [mock:html]")
    poll(lambda: page.query_selector(f"#{html}.task-succeeded"), 30)
    shown = text_of(page, f"#{html} .result-text")
    obs["html_as_text"] = '<script>alert("xss")</script>' in shown and 'onerror="alert(1)"' in shown
    obs["injected_elements"] = page.evaluate(
        "document.querySelectorAll('#result script, #result img, #result a[href^=javascript]').length")
    shots.take(page, "markup-as-text")

    # A failing question shows its reason and a Try again button (pressed further down).
    # [mock:401x1]: only the first request with this prompt fails (401 is never retried by the backend); a fresh
    # prompt each run, so a mock that has already seen one still fails it once.
    retry_prompt = obs["retry_prompt"] = f"browser retry {secrets.token_hex(3)} [mock:401x1]"
    failed = ask(page, retry_prompt)
    poll(lambda: page.query_selector(f"#{failed}.task-failed"), 30)
    obs["failed_heading"] = text_of(page, f"#{failed} h2")
    obs["failed_summary"] = text_of(page, f"#{failed} .summary")
    obs["failed_type"] = text_of(page, f"#{failed} .details code")
    obs["failed_has_try_again"] = text_of(page, f"#{failed} form.retry button")
    shots.take(page, "failed")
    light.append(worst_contrast(page))

    # Cancel while it streams; keyboard focus stays in the task.
    cancel = ask(page, "browser cancel [mock:latency=30] [mock:long=100]")
    poll(lambda: len(text_of(page, f"#{cancel}.task-pending .partial")) > 40, 15)
    shots.take(page, "before-cancel")
    light.append(worst_contrast(page))
    obs["light_contrast"], obs["light_contrast_worst"] = min(light)
    # The whole page so far, from the top, in a window tall enough for it (the README shows this one).
    page.set_viewport_size({"width": DESKTOP["width"], "height": 1400})
    page.evaluate("window.scrollTo(0, 0)")
    shots.take(page, "overview")
    page.set_viewport_size(DESKTOP)
    page.click(f"#{cancel} form.cancel button")
    obs["cancelled"] = bool(poll(lambda: page.query_selector(f"#{cancel}.task-cancelled"), 15))
    obs["cancelled_text"] = text_of(page, f"#{cancel} h2")
    obs["focus_stays_after_cancel"] = page.evaluate(
        "(s) => !!document.activeElement && !!document.activeElement.closest(s)", f"#{cancel}")
    shots.take(page, "cancelled")

    # Try again, reached and pressed by keyboard alone, asks the same question again; now it succeeds.
    page.focus("#query")
    obs["try_again_by_keyboard"] = tab_to(page, f"#{failed} form.retry button")
    if obs["try_again_by_keyboard"]:
        page.keyboard.press("Enter")
    retried = poll(lambda: [i for i in task_ids(page) if i not in (first, second, html, cancel, failed)], 10)
    retried = retried[0] if retried else None
    poll(lambda: page.query_selector(f"#{retried}.task-succeeded"), 30)
    obs["retry_replaces_failed"] = page.query_selector(f"#{failed}") is None and retried is not None
    obs["retry_query"] = text_of(page, f"#{retried} .query")
    obs["retry_result"] = text_of(page, f"#{retried}.task-succeeded .result-text")
    obs["tasks_on_page"] = len(task_ids(page))
    shots.take(page, "retried")
    obs["dialogs"] = len(dialogs)
    context.close()


def dark_and_mobile_checks(browser, base, obs, shots, log):
    # The dark theme follows prefers-color-scheme; measured with a failure, a message and a running task shown.
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP, color_scheme="dark")
    page = log.watch(context.new_page())
    page.goto(base + "/")
    obs["dark_background"] = page.evaluate("getComputedStyle(document.body).backgroundColor")
    done = ask(page, "browser dark answer")
    poll(lambda: page.query_selector(f"#{done}.task-succeeded"), 30)
    failed = ask(page, "browser dark [mock:401]")
    poll(lambda: page.query_selector(f"#{failed}.task-failed"), 30)
    running = ask(page, "browser dark running [mock:latency=30] [mock:long=60]")
    poll(lambda: text_of(page, f"#{running}.task-pending .partial"), 10)
    page.fill("#query", " ")
    page.press("#query", "Enter")
    poll(lambda: page.query_selector("#messages .message-error"), 10)
    obs["dark_contrast"], obs["dark_contrast_worst"] = worst_contrast(page)
    shots.take(page, "dark", full_page=True)
    page.click(f"#{running} form.cancel button")
    poll(lambda: page.query_selector(f"#{running}.task-cancelled"), 15)
    context.close()

    # A phone-sized screen: nothing sticks out sideways.
    context = browser.new_context(ignore_https_errors=True, viewport=MOBILE, color_scheme="light")
    page = log.watch(context.new_page())
    page.goto(base + "/")
    mobile = ask(page, "browser mobile, a question long enough to wrap on a small screen [mock:long=30]")
    poll(lambda: page.query_selector(f"#{mobile}.task-succeeded"), 30)
    obs["mobile_result"] = bool(text_of(page, f"#{mobile} .result-text"))
    obs["mobile_overflow_px"] = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    shots.take(page, "mobile")
    context.close()


def markdown_counts(page, task):
    """How many of each rendered construct the answer of a task holds."""
    return page.evaluate("""(id) => {
        const answer = document.querySelector('#' + id + ' .markdown');
        const count = (s) => answer ? answer.querySelectorAll(s).length : -1;
        return {h4: count('h4'), ol_li: count('ol > li'), strong: count('strong'), inline_code: count('p code'),
            python: count('pre code.language-python'), th: count('table th'), td: count('table td'),
            checkbox: count('input[type=checkbox][disabled]'), del: count('del'), blockquote: count('blockquote'),
            rel_links: count('a[rel="noopener noreferrer nofollow"]')};
    }""", task)


def missing_constructs(page, task):
    """The constructs of the demo answer that its rendering lacks ("" when every one is there)."""
    return ",".join(name for name, count in sorted(markdown_counts(page, task).items()) if count < 1)


def clipboard(page):
    try:
        return page.evaluate("navigator.clipboard.readText()")
    except PlaywrightError as error:
        return f"(clipboard unreadable: {error})"


def markdown_checks(browser, base, obs, shots, log, scheme):
    """A Markdown answer in one theme: plain text while it streams, then rendered; Copy buttons by keyboard (light
    theme); contrast of every rendered style; hostile Markdown runs nothing and loads nothing (light theme)."""
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP, color_scheme=scheme)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = log.watch(context.new_page())
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    prefix = "md" if scheme == "light" else "md_dark"
    expected = mock_markdown_reply()
    page.goto(base + "/")

    md = ask(page, f"browser {scheme} markdown [mock:markdown] [mock:latency=3]")
    streamed_plain = poll(lambda: "## A mock answer" in text_of(page, f"#{md}.task-pending .partial"), 10)
    obs[f"{prefix}_streams_as_text"] = bool(streamed_plain) and page.locator(f"#{md} .partial h4").count() == 0
    poll(lambda: page.query_selector(f"#{md}.task-succeeded .answer-actions"), 30)
    obs[f"{prefix}_missing"] = missing_constructs(page, md)
    obs[f"{prefix}_contrast"], obs[f"{prefix}_contrast_worst"] = worst_contrast(
        page, [s.replace("ID", md) for s in MARKDOWN_CONTRAST_SELECTORS])
    obs[f"{prefix}_code_copy_buttons"] = page.locator(f"#{md} .code-block button.copy").count()
    obs[f"{prefix}_answer_copy_buttons"] = page.locator(f"#{md} .answer-actions button.copy").count()
    if scheme == "dark":
        page.locator(f"#{md}").scroll_into_view_if_needed()
        shots.take(page, "dark-markdown", full_page=True)
        context.close()
        return

    # Long code lines scroll inside their block; the page itself never scrolls sideways, even on a phone.
    obs["md_code_overflows_its_block"] = page.evaluate(
        "(id) => { const p = document.querySelector('#' + id + ' pre'); return p.scrollWidth > p.clientWidth; }", md)
    obs["md_code_overflow_x"] = page.evaluate(
        "(id) => getComputedStyle(document.querySelector('#' + id + ' pre')).overflowX", md)
    obs["md_page_overflow_px"] = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.set_viewport_size(MOBILE)
    obs["md_mobile_overflow_px"] = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.set_viewport_size(DESKTOP)

    # Copy, by keyboard alone: the code block's exact text, then the whole answer's Markdown.
    page.focus("#query")
    obs["md_copy_code_by_keyboard"] = tab_to(page, f"#{md} .code-block button.copy", presses=80)
    page.keyboard.press("Enter")
    obs["md_copy_code_label"] = poll(lambda: text_of(page, f"#{md} .code-block button.copy") == "Copied" and "Copied", 5)
    obs["md_copy_code_visible"] = page.locator(f"#{md} .code-block button.copy").is_visible()
    obs["md_copy_code_exact"] = clipboard(page) == first_code_block(expected)
    obs["md_copy_status_announced"] = page.evaluate(
        "!!document.querySelector('[role=status]') && document.querySelector('[role=status]').textContent")
    shots.take(page, "markdown-copied")
    obs["md_copy_answer_by_keyboard"] = tab_to(page, f"#{md} .answer-actions button.copy", presses=20)
    page.keyboard.press("Enter")
    obs["md_copy_answer_label"] = poll(
        lambda: text_of(page, f"#{md} .answer-actions button.copy") == "Copied" and "Copied", 5)
    obs["md_copy_answer_exact"] = clipboard(page) == expected
    obs["md_copy_label_returns"] = bool(poll(
        lambda: text_of(page, f"#{md} .answer-actions button.copy") == "Copy answer", 5))

    # The README's picture: a rendered answer above one that is streaming in.
    streaming = ask(page, "browser overview: what is still streaming? [mock:latency=30] [mock:long=120]")
    poll(lambda: len(text_of(page, f"#{streaming}.task-pending .partial")) > 200, 15)
    page.set_viewport_size({"width": DESKTOP["width"], "height": 1640})
    page.evaluate("window.scrollTo(0, 0)")
    shots.take(page, "overview-markdown")
    page.set_viewport_size(DESKTOP)
    page.click(f"#{streaming} form.cancel button")
    poll(lambda: page.query_selector(f"#{streaming}.task-cancelled"), 15)

    # Hostile Markdown (the mock repeats the question): nothing runs, nothing loads from outside, no CSP refusal.
    csp_before = len(log.csp)
    hostile = ask(page, "browser hostile [a](javascript:alert(1)) [b](data:text/html,<script>alert(2)</script>) "
                        "<img src=x onerror=alert(3)> ![p](https://evil.example/p.png) &lt;script&gt;alert(4)&lt;/script&gt; "
                        "<javascript:alert(5)> [c](&#x6A;avascript:alert(6)) <svg onload=alert(7)> https://evil.example/auto")
    poll(lambda: page.query_selector(f"#{hostile}.task-succeeded"), 30)
    obs["hostile_rendered"] = "Mock reply to: browser hostile" in text_of(page, f"#{hostile} .markdown")
    obs["hostile_live_elements"] = page.evaluate("""(id) => document.querySelectorAll(
        '#' + id + ' .markdown :is(script, img, svg, iframe, style), '
        + '#' + id + ' .markdown a:is([href^="javascript" i], [href^="data" i], [href^="vbscript" i])').length""", hostile)
    obs["hostile_image_is_link"] = page.locator(f'#{hostile} a.image-link[href="https://evil.example/p.png"]').count()
    time.sleep(1)  # anything the answer could make the browser fetch would have been asked for by now
    host = urlsplit(base).netloc
    obs["hostile_outside_requests"] = len([u for u in requests if urlsplit(u).netloc not in (host, "")])
    obs["hostile_dialogs"] = len(dialogs)
    obs["hostile_csp_violations"] = len(log.csp) - csp_before
    shots.take(page, "markdown-hostile")

    # 50 answers on one page: each gets its buttons when it arrives, and the page still answers at once.
    ids = []
    for n in range(50):
        answer = context.request.post(base + "/api/tasks", headers={"Content-Type": "application/json"},
                                      data=json.dumps({"query": f"browser fifty {n} [mock:markdown] [mock:latency=0]"}))
        if answer.ok:
            ids.append(answer.json().get("id", ""))
        time.sleep(0.12)  # under nginx's per-address limit on starting tasks (10/s)
    for task in ids:
        poll(lambda: context.request.get(f"{base}/api/tasks/{task}").json().get("status") == "succeeded", 10)
    started = time.monotonic()
    # One after the other, as answers arrive on a page (htmx drops a request on an element that has one in flight).
    page.evaluate("""async (ids) => { for (const id of ids) {
        await htmx.ajax('GET', '/check?task_id=' + id, {target: '#result', swap: 'beforeend'});
    } }""", ids)
    poll(lambda: page.locator("#result .task-succeeded .answer-actions").count() >= len(ids) + 2, 30)
    obs["fifty_answers"] = page.locator("#result .task-succeeded .markdown").count() - 2
    obs["fifty_code_copy_buttons"] = page.locator("#result .code-block button.copy").count() - 1
    obs["fifty_seconds_to_render"] = round(time.monotonic() - started, 2)
    last = page.locator("#result .code-block button.copy").last
    last.scroll_into_view_if_needed()
    clicked = time.monotonic()
    last.click()
    obs["fifty_last_copy_works"] = bool(poll(lambda: last.text_content() == "Copied", 5))
    obs["fifty_copy_feedback_ms"] = round((time.monotonic() - clicked) * 1000)
    obs["fifty_page_overflow_px"] = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    context.close()


def wait_for_task_page(page, selector, timeout):
    """Waits on the self-refreshing no-JavaScript task page until selector shows."""
    return bool(poll(lambda: page.query_selector(selector), timeout, interval=0.2))


def no_js_checks(browser, base, obs, shots, log):
    context = browser.new_context(ignore_https_errors=True, viewport=DESKTOP, java_script_enabled=False)
    page = log.watch(context.new_page())

    # Ask: a plain POST, 303 to the task page, which refreshes itself until the result is there.
    page.goto(base + "/")
    page.fill("#query", "browser nojs [mock:latency=6] [mock:long=5]")
    page.click("#query-form button[type=submit]")
    obs["nojs_task_page"] = bool(poll(lambda: re.search(r"/task\?task_id=[A-Za-z0-9_-]{22}$", page.url), 10))
    obs["nojs_pending"] = text_of(page, ".task-pending .status").startswith("Processing...")
    shots.take(page, "nojs-pending")
    # Each refresh shows the time elapsed so far, rendered by the server.
    elapsed = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if page.query_selector(".task-succeeded"):
                break
            elapsed.add(text_of(page, ".task-pending .elapsed"))
        except PlaywrightError:
            pass  # between two refreshes
        time.sleep(0.2)
    obs["nojs_elapsed_values_seen"] = len([e for e in elapsed if e])
    obs["nojs_result"] = text_of(page, ".task-succeeded .result-text")
    obs["nojs_refresh_stops"] = page.query_selector("meta[http-equiv=refresh]") is None
    shots.take(page, "nojs-result")

    # Try again without JavaScript: a plain form to /generate with the same question (fresh, as above).
    page.goto(base + "/")
    obs["nojs_retry_prompt"] = f"browser nojs retry {secrets.token_hex(3)} [mock:401x1]"
    page.fill("#query", obs["nojs_retry_prompt"])
    page.click("#query-form button[type=submit]")
    wait_for_task_page(page, ".task-failed", 30)
    failed_url = page.url
    obs["nojs_failed"] = text_of(page, ".task-failed h2")
    shots.take(page, "nojs-failed")
    page.click("form.retry button")
    wait_for_task_page(page, ".task-succeeded", 30)
    obs["nojs_retry_new_task"] = page.url != failed_url and "/task?task_id=" in page.url
    obs["nojs_retry_result"] = text_of(page, ".task-succeeded .result-text")

    # Cancel without JavaScript. The page refreshes itself every second, so a click may meet a reload: try again.
    page.goto(base + "/")
    page.fill("#query", "browser nojs cancel [mock:latency=30] [mock:long=60]")
    page.click("#query-form button[type=submit]")
    for _ in range(5):
        try:
            page.click("form.cancel button", timeout=3000)
        except PlaywrightError:
            pass
        if wait_for_task_page(page, ".task-cancelled", 8):
            break
    obs["nojs_cancelled"] = text_of(page, ".task-cancelled h2")
    shots.take(page, "nojs-cancelled")

    # A Markdown answer is rendered without JavaScript too, and has no Copy buttons.
    answer = context.request.post(base + "/api/tasks", headers={"Content-Type": "application/json"},
                                  data=json.dumps({"query": "browser nojs markdown [mock:markdown] [mock:latency=0]"}))
    task = answer.json().get("id", "") if answer.ok else ""
    page.goto(f"{base}/task?task_id={task}")
    wait_for_task_page(page, ".task-succeeded", 30)
    obs["nojs_md_missing"] = missing_constructs(page, f"task-{task}") if task else "no task"
    obs["nojs_md_copy_buttons"] = page.locator("button.copy").count()
    shots.take(page, "nojs-markdown", full_page=True)

    # Line breaks in an answer are kept: a question with one (through the JSON API; the mock echoes it).
    answer = context.request.post(base + "/api/tasks", data=json.dumps({"query": "line one\nline two"}),
                                  headers={"Content-Type": "application/json"})
    task = answer.json().get("id", "") if answer.ok else ""
    page.goto(f"{base}/task?task_id={task}")
    wait_for_task_page(page, ".task-succeeded", 30)
    obs["line_breaks_kept"] = "line one\nline two" in text_of(page, ".task-succeeded .result-text")
    context.close()


def csp_probe(browser, base, obs, log):
    """Shows that the error log does see CSP refusals: an inline script and an inline style, added on purpose."""
    context = browser.new_context(ignore_https_errors=True)
    page = log.watch(context.new_page())
    page.goto(base + "/")
    page.evaluate("""() => {
        const s = document.createElement('script'); s.textContent = 'window.inlineRan = true;';
        document.body.append(s);
        const d = document.createElement('div'); d.innerHTML = '<p style="color: red">x</p>'; document.body.append(d);
    }""")
    obs["csp_probe_detected"] = bool(poll(lambda: len(log.csp) >= 2, 5))
    obs["csp_probe_blocked_inline_script"] = page.evaluate("window.inlineRan !== true")
    context.close()


def main(base, _ca, shot_dir, obs):
    shots = Shots(shot_dir)
    log = ErrorLog()
    with sync_playwright() as p:
        # The certificate is the run's self-signed one; TLS itself is checked by the curl tests.
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            js_page_checks(browser, base, obs, shots, log)
            dark_and_mobile_checks(browser, base, obs, shots, log)
            markdown_checks(browser, base, obs, shots, log, "light")
            markdown_checks(browser, base, obs, shots, log, "dark")
            no_js_checks(browser, base, obs, shots, log)
            obs["errors"] = len(log.errors)
            obs["error_text"] = " | ".join(log.errors)[:400]
            obs["csp_violations"] = len(log.csp)
            probe = ErrorLog()
            csp_probe(browser, base, obs, probe)
        finally:
            obs["screenshots"] = shots.count
            browser.close()


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2])
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 64)
    found = {}
    status = 0
    try:
        main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None, found)
    except Exception as error:  # a timeout or a missing browser: report it, the shell test fails
        found["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        status = 2
    for key, value in found.items():
        print(f"{key}={str(value).replace(chr(10), ' ')}")
    sys.exit(status)
