#!/usr/bin/env bash
# shellcheck shell=bash
# The JSON API: the happy path and every error status. (503 queue_full: test_10.) Sourced by run.sh.

t06_query="e2e api test"
api_create "${t06_query}"
assert_status "api create: 202" 202
assert_header_match "api create: JSON" Content-Type '^application/json'
assert_match "api create: an id" '^[A-Za-z0-9_-]{22,}$' "${TASK_ID}"
assert_match "api create: status queued or running" '^(queued|running)$' "$(json status)"
assert_match "api create: Location /api/tasks/ID" "(^|/)api/tasks/${TASK_ID}\$" "$(header Location)"
t06_id="${TASK_ID}"

if poll_api_status 30 "${t06_id}" succeeded failed; then
    pass "api get: the task finishes"
else
    fail "api get: the task finishes" "$(last_response)"
fi
assert_status "api get: 200" 200
assert_eq "api get: status succeeded" "succeeded" "$(json status)"
assert_eq "api get: the mock's exact reply" "Mock reply to: ${t06_query}" "$(json result)"
assert_eq "api get: id" "${t06_id}" "$(json id)"
assert_eq "api get: query" "${t06_query}" "$(json query)"
check "api get: kind" "no kind in $(last_response)" test -n "$(json kind)"
check "api get: created_at" "no created_at in $(last_response)" test -n "$(json created_at)"
check "api get: no error on success" "error present" test -z "$(json error)"

http GET "/api/tasks/${t06_id}"
assert_eq "api get: reading again still shows the result" "Mock reply to: ${t06_query}" "$(json result)"

t06_json=(-H 'Content-Type: application/json')
http POST /api/tasks "${t06_json[@]}" --data-binary '{"query":'
assert_json_error "api errors: bad JSON is 400" 400
http POST /api/tasks "${t06_json[@]}" --data-binary '{}'
assert_json_error "api errors: missing query is 400" 400
http POST /api/tasks "${t06_json[@]}" --data-binary '{"query":"   "}'
assert_json_error "api errors: blank query is 400" 400
http POST /api/tasks "${t06_json[@]}" --data-binary '{"query":42}'
assert_json_error "api errors: a non-string query is 400" 400
http POST /api/tasks -H 'Content-Type: text/plain' --data-binary '{"query":"hello"}'
assert_json_error "api errors: text/plain is 415" 415
http POST /api/tasks --data-urlencode 'query=hello'
assert_json_error "api errors: a form body is 415" 415
http GET /api/tasks
assert_json_error "api errors: GET /api/tasks is 405" 405
assert_header_match "api errors: 405 on /api/tasks has Allow: POST" Allow 'POST'
http PUT "/api/tasks/${t06_id}" "${t06_json[@]}" --data-binary '{"query":"x"}'
assert_json_error "api errors: PUT /api/tasks/ID is 405" 405
assert_header_match "api errors: 405 on /api/tasks/ID has Allow: GET" Allow 'GET'
t06_big="$(head -c 40000 /dev/zero | tr '\0' 'a')"
http POST /api/tasks "${t06_json[@]}" --data-binary "$(json_query "${t06_big}")"
assert_json_error "api errors: a query over --max-query-bytes is 413" 413
true
