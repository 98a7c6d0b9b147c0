#!/usr/bin/env bash
# shellcheck shell=bash
# A query through htmx: the Processing... fragment at once, polling, the mock's exact reply, and the result
# again on reload. Sourced by run.sh.

t03_query="e2e polling test one"
t03_reply="Mock reply to: ${t03_query}"

htmx_generate "${t03_query}"
assert_status "generate (htmx): 200" 200
assert_match "generate (htmx): task id has 128 bits, URL-safe" '^[A-Za-z0-9_-]{22,}$' "${TASK_ID}"
assert_body_contains "generate (htmx): Processing..." 'Processing...'
assert_body_contains "generate (htmx): pending fragment for the task" "<div id=\"task-${TASK_ID}\" class=\"task task-pending\""
assert_body_contains "generate (htmx): polls /check every second" "hx-get=\"/check?task_id=${TASK_ID}\""
assert_match "generate (htmx): the trigger polls every 1s" 'hx-trigger="([^"]*, *)?every 1s(,[^"]*)?"' "${HTTP_BODY}"
assert_body_contains "generate (htmx): outerHTML swap" 'hx-swap="outerHTML"'
t03_id="${TASK_ID}"

if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${t03_id}" -H 'HX-Request: true'; then
    pass "check: the result arrives by polling"
else
    fail "check: the result arrives by polling" "$(last_response)"
fi
assert_status "check: 200 when done" 200
assert_body_contains "check: the mock's exact reply, rendered as Markdown" "<p>${t03_reply}</p>"
assert_body_contains "check: in the rendered answer's block" '<div class="result-text markdown">'
assert_body_lacks "check: polling stops once done (no hx-trigger)" 'hx-trigger'

http GET "/check?task_id=${t03_id}" -H 'HX-Request: true'
assert_status "check: reload after the result is 200" 200
assert_body_contains "check: reload after the result shows it again" "<p>${t03_reply}</p>"

http GET "/api/tasks/${t03_id}"
assert_eq "check: the API sees the htmx task as succeeded" "succeeded" "$(json status)"
assert_eq "check: the API gives the same result" "${t03_reply}" "$(json result)"

htmx_generate "e2e polling test two"
check "generate (htmx): a second task gets another id" "same id ${TASK_ID}" test "${TASK_ID}" != "${t03_id}"
true
