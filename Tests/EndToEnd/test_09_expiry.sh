#!/usr/bin/env bash
# shellcheck shell=bash
# Expired ids: with --result-ttl 2, a finished task is gone a little later (404, polling stops); queued or
# running tasks are never swept. Then the backend gets its default flags back. Sourced by run.sh.

restart_backend "expiry: backend restarts with --result-ttl 2" --result-ttl 2
api_create "e2e expiry test"
assert_status "expiry: task accepted" 202
t09_id="${TASK_ID}"
if poll_api_status 30 "${t09_id}" succeeded failed; then
    pass "expiry: the task finishes"
else
    fail "expiry: the task finishes" "$(last_response)"
fi
sleep 3
if poll_status 30 404 GET "/check?task_id=${t09_id}" -H 'HX-Request: true'; then
    pass "expiry: check is 404 after the TTL"
else
    fail "expiry: check is 404 after the TTL" "$(last_response)"
fi
assert_body_contains "expiry: Unknown or expired task" 'Unknown or expired task'
assert_body_lacks "expiry: polling stops" 'hx-trigger'
http GET "/api/tasks/${t09_id}"
assert_json_error "expiry: the API says 404 unknown_task" 404 unknown_task

# A task running longer than the TTL is still there when it ends.
api_create "e2e expiry long [mock:latency=4]"
t09_long="${TASK_ID}"
if poll_api_status 30 "${t09_long}" succeeded failed; then
    pass "expiry: a task running longer than the TTL is not swept"
else
    fail "expiry: a task running longer than the TTL is not swept" "$(last_response)"
fi

restart_backend "expiry: backend restarts with default flags"
true
