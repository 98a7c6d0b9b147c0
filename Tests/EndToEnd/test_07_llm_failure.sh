#!/usr/bin/env bash
# shellcheck shell=bash
# A 401 from the LLM: a failed task with a clear message (type, request id) and never the API key.
# Sourced by run.sh.

htmx_generate "[mock:401] e2e auth failure"
assert_status "llm 401: generate is accepted" 200
t07_id="${TASK_ID}"
if poll_body 30 'task-failed' GET "/check?task_id=${t07_id}" -H 'HX-Request: true'; then
    pass "llm 401: the task fails (task-failed fragment)"
else
    fail "llm 401: the task fails (task-failed fragment)" "$(last_response)"
fi
assert_status "llm 401: check is 200" 200
assert_body_contains "llm 401: names authentication_error" 'authentication_error'
assert_body_contains "llm 401: gives the request id" 'request id: <code>req_'
assert_body_lacks "llm 401: polling stops" 'hx-trigger'
assert_body_lacks "llm 401: no API key in the fragment" "${E2E_KEY}"

http GET "/api/tasks/${t07_id}"
assert_eq "llm 401 (api): status failed" "failed" "$(json status)"
assert_eq "llm 401 (api): error.type authentication_error" "authentication_error" "$(json error.type)"
assert_match "llm 401 (api): error.request_id" '^req_' "$(json error.request_id)"
check "llm 401 (api): error.message" "no message" test -n "$(json error.message)"
check "llm 401 (api): no result" "a result on a failed task" test -z "$(json result)"
assert_body_lacks "llm 401 (api): no API key" "${E2E_KEY}"

http GET "/task?task_id=${t07_id}"
assert_body_contains "llm 401 (page): the failure, on the no-JavaScript page" 'authentication_error'
assert_body_lacks "llm 401 (page): no API key" "${E2E_KEY}"
assert_file_lacks "llm 401: no API key in backend.log" "${E2E_KEY}" "${E2E_DIR}/backend.log"
true
