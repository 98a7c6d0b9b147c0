#!/usr/bin/env bash
# shellcheck shell=bash
# Unknown and malformed task ids: a distinct answer that stops the polling, never a 500. (Expired ids: test_09.)
# Sourced by run.sh.

t05_long="$(head -c 600 /dev/zero | tr '\0' 'A')"
declare -A t05_ids=(
    ["well-formed but unknown"]="$(random_task_id)"
    ["malformed (short)"]="xyz"
    ["malformed (markup)"]="%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    ["malformed (path)"]="..%2F..%2Fetc%2Fpasswd"
    ["malformed (empty)"]=""
    ["malformed (600 chars)"]="${t05_long}"
)
for t05_kind in "well-formed but unknown" "malformed (short)" "malformed (markup)" "malformed (path)" \
    "malformed (empty)" "malformed (600 chars)"; do
    http GET "/check?task_id=${t05_ids[${t05_kind}]}" -H 'HX-Request: true'
    assert_status "check, ${t05_kind} id: 404" 404
    assert_body_contains "check, ${t05_kind} id: Unknown or expired task" 'Unknown or expired task'
    assert_body_lacks "check, ${t05_kind} id: polling stops (no hx-trigger)" 'hx-trigger'
done
assert_body_lacks "check: a malformed id is not reflected as markup" '<script>alert(1)'

http GET "/check" -H 'HX-Request: true'
assert_status "check without task_id: 400 or 404, not 500" 400 404
assert_body_lacks "check without task_id: no polling" 'hx-trigger'

http GET "/task?task_id=$(random_task_id)"
assert_status "task page, unknown id: 404" 404
assert_body_contains "task page, unknown id: Unknown or expired task" 'Unknown or expired task'
assert_body_lacks "task page, unknown id: does not refresh" 'http-equiv="refresh"'

http GET "/api/tasks/$(random_task_id)"
assert_json_error "api, unknown id: 404 unknown_task" 404 unknown_task
http GET "/api/tasks/not-an-id"
assert_json_error "api, malformed id: 404 unknown_task" 404 unknown_task
true
