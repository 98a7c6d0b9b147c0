#!/usr/bin/env bash
# shellcheck shell=bash
# A Markdown answer ([mock:markdown], the demo's answer) is rendered by the server in the htmx fragment, in the
# `done` event of the page's stream and on the no-JavaScript task page; the JSON API keeps the raw Markdown.
# Hostile Markdown in an answer (the mock echoes the question) loses its dangerous links and never becomes markup.
# Sourced by run.sh.

# The same answer, from the mock's own source (its MARKDOWN_REPLY).
t12_markdown="$(python3 -c 'import importlib.util, sys
spec = importlib.util.spec_from_file_location("mock", sys.argv[1])
mock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mock)
print(mock.MARKDOWN_REPLY, end="")' "${LONGHAUL_ROOT}/mock/anthropic_mock.py")"

htmx_generate "e2e markdown [mock:markdown] [mock:latency=2]"
t12_id="${TASK_ID}"
# The page's stream, from the start: deltas are escaped text; `done` carries the rendered fragment.
t12_sse="${E2E_DIR}/markdown-stream.out"
curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -o "${t12_sse}" \
    "https://localhost:${E2E_PORT}/stream?task_id=${t12_id}" 2>>"${E2E_DIR}/e2e.log" || true
# The deltas joined (each wake sends the bytes past the client's offset, so a word may come alone).
t12_streamed="$(python3 -c '
import sys
text, event, data = "", None, []
for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
    if line == "":
        if event == "delta":
            text += "\n".join(data)
        event, data = None, []
    elif line.startswith("event: "):
        event = line[7:]
    elif line.startswith("data: "):
        data.append(line[6:])
print(text[:200])' "${t12_sse}")"
check "markdown stream: deltas carry the escaped source while it streams" "$(head -c 300 "${t12_sse}" | tr '\n' ' ')" \
    grep -q '^## A mock answer, in Markdown' <<<"${t12_streamed}"
t12_done="$(sed -n '/^event: done/,$p' "${t12_sse}")"
assert_match "markdown stream: done holds the rendered table" '<table>' "${t12_done}"
assert_match "markdown stream: done holds the code block with its language" \
    '<pre><code class="language-python">' "${t12_done}"

if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${t12_id}" -H 'HX-Request: true'; then
    pass "markdown: the result arrives"
else
    fail "markdown: the result arrives" "$(last_response)"
fi
assert_body_contains "markdown: ## becomes <h4> (two levels down)" '<h4>A mock answer, in Markdown</h4>'
assert_body_contains "markdown: a numbered list" '<ol>'
assert_body_contains "markdown: bold" '<strong>mock LLM</strong>'
assert_body_contains "markdown: inline code" '<code>scripts/run</code>'
assert_body_contains "markdown: a code block keeps its language as a class" '<pre><code class="language-python">import json'
assert_body_contains "markdown: code is escaped inside the block" '{&quot;query&quot;: question}'
assert_body_contains "markdown: a table, aligned by attribute" '<th align="center">When done</th>'
assert_body_contains "markdown: strikethrough" '<del>Images are loaded</del>'
assert_body_contains "markdown: task list items" '<input type="checkbox" checked="" disabled="" />'
assert_body_contains "markdown: a link with rel" \
    '<a href="https://commonmark.org/help/" rel="noopener noreferrer nofollow">links</a>'
assert_body_contains "markdown: a blockquote" '<blockquote>'
assert_body_contains "markdown: the source travels along for Copy answer" '<template class="answer-source">## A mock answer'
assert_body_lacks "markdown: no inline style" 'style='
assert_body_lacks "markdown: no script" '<script'

http GET "/task?task_id=${t12_id}"
assert_body_contains "markdown (no-JavaScript page): rendered too" '<pre><code class="language-python">'
assert_body_contains "markdown (no-JavaScript page): its table" '<table>'

http GET "/api/tasks/${t12_id}"
assert_eq "markdown (api): result is the raw Markdown, unchanged" "${t12_markdown}" "$(json result)"

# Hostile Markdown: the mock's reply repeats the question, so the question carries it.
t12_hostile='e2e hostile [a](javascript:alert(1)) [b](JAVASCRIPT:alert(2)) [c](&#106;avascript:alert(3)) [d](data:text/html,x) [e](vbscript:msgbox) <javascript:alert(4)> ![img](https://evil.example/x.png) <img src=x onerror=alert(5)> &lt;script&gt;alert(6)&lt;/script&gt;'
htmx_generate "${t12_hostile}"
if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${TASK_ID}" -H 'HX-Request: true'; then
    pass "hostile markdown: the result arrives"
else
    fail "hostile markdown: the result arrives" "$(last_response)"
fi
t12_answer="$(sed -n '/<div class="result-text markdown">/,/<\/div>/p' <<<"${HTTP_BODY}")"
assert_match "hostile markdown: the answer is rendered" '<p>Mock reply to: e2e hostile' "${t12_answer}"
assert_eq "hostile markdown: no javascript:, data: or vbscript: link" "" \
    "$(grep -oiE 'href="(javascript|data|vbscript)[^"]*"' <<<"${t12_answer}" || true)"
assert_eq "hostile markdown: every link of the answer has rel" "" \
    "$(grep -oE '<a [^>]*>' <<<"${t12_answer}" | grep -v 'rel="noopener noreferrer nofollow"' || true)"
assert_match "hostile markdown: the refused links keep their text" '<p>Mock reply to: e2e hostile a b c d e ' "${t12_answer}"
assert_match "hostile markdown: the image is a link, never loaded" \
    '<a href="https://evil.example/x.png" rel="noopener noreferrer nofollow" class="image-link">img</a>' "${t12_answer}"
assert_eq "hostile markdown: no <img> element" "" "$(grep -o '<img' <<<"${t12_answer}" || true)"
assert_match "hostile markdown: raw HTML is shown as text" '&lt;img src=x onerror=alert\(5\)&gt;' "${t12_answer}"
assert_match "hostile markdown: entities stay text" '&lt;script&gt;alert\(6\)&lt;/script&gt;' "${t12_answer}"
true
