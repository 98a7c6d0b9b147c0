#!/usr/bin/env bash
# shellcheck shell=bash
# A full queue: 503 with Retry-After from the API, a readable "busy" message for htmx. Sourced by run.sh.

restart_backend "queue: backend restarts with --max-in-flight 1 --max-queued 1" --max-in-flight 1 --max-queued 1

api_create "e2e queue one [mock:latency=30]"
assert_status "queue: first task accepted" 202
t10_first="${TASK_ID}"
# Once the first one runs, the queue is empty: the second waits in it.
if poll_api_status 30 "${t10_first}" running; then
    pass "queue: first task runs"
else
    fail "queue: first task runs" "$(last_response)"
fi
api_create "e2e queue two [mock:latency=30]"
assert_status "queue: second task accepted (queued)" 202
assert_eq "queue: second task is queued" "queued" "$(json status)"

api_create "e2e queue three"
assert_json_error "queue full (api): 503 queue_full" 503 queue_full
assert_header_match "queue full (api): Retry-After in seconds" Retry-After '^[1-9][0-9]*$'

htmx_generate "e2e queue four"
assert_status "queue full (htmx): 503" 503
check "queue full (htmx): says the service is busy" "no 'busy' in: $(last_response)" \
    grep -qi 'busy' <<<"${HTTP_BODY}"
assert_body_lacks "queue full (htmx): no polling fragment" 'hx-trigger'

http GET "/api/tasks/${t10_first}"
assert_match "queue: the first task is unaffected" '^(running|succeeded)$' "$(json status)"

restart_backend "queue: backend restarts with default flags"
api_create "e2e after the queue test"
if poll_api_status 30 "${TASK_ID}" succeeded; then
    pass "queue: a new task succeeds after the restart"
else
    fail "queue: a new task succeeds after the restart" "$(last_response)"
fi
true
