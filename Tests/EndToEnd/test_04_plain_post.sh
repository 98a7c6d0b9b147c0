#!/usr/bin/env bash
# shellcheck shell=bash
# Without JavaScript: a plain POST answers 303 to a task page that refreshes itself until the result is there.
# Sourced by run.sh.

# The mock takes 5 s, so the first look at the page almost always finds the task pending.
t04_query="e2e plain post [mock:latency=5]"
plain_generate "${t04_query}"
assert_status "generate (plain): 303" 303
assert_match "generate (plain): Location is /task?task_id=ID" '(^|/)task\?task_id=[A-Za-z0-9_-]{22,}$' \
    "$(header Location)"
t04_id="${TASK_ID}"

http GET "/task?task_id=${t04_id}"
assert_status "task page: 200" 200
assert_body_contains "task page: a whole page" '<title>Long running</title>'
if [[ "${HTTP_BODY}" == *'Processing...'* ]]; then
    assert_body_contains "task page: refreshes itself while pending" '<meta http-equiv="refresh" content="1">'
fi

if poll_body 30 '<h2>Result</h2>' GET "/task?task_id=${t04_id}"; then
    pass "task page: shows the result once done"
else
    fail "task page: shows the result once done" "$(last_response)"
fi
assert_body_contains "task page: the mock's exact reply, rendered" "<p>Mock reply to: ${t04_query}</p>"
assert_body_lacks "task page: stops refreshing once done" 'http-equiv="refresh"'
true
