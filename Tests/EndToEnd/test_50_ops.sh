#!/usr/bin/env bash
# shellcheck shell=bash
# Operations (issue 7): /ping, /status (text and JSON), /metrics (Prometheus), the access log, nginx's rate limit
# on starting tasks (429), and a graceful SIGTERM that drains running tasks and fails the rest as interrupted.
# Sourced by run.sh.

restart_backend "ops: backend restarts with --shutdown-grace 3 --access-log on" --shutdown-grace 3 --access-log on

http GET /ping
assert_status "ping: 200" 200
assert_eq "ping: pong" "pong" "${HTTP_BODY}"

# Some traffic first: one success and one retried call.
api_create "e2e ops [mock:529x1] one retry"
t50_id="${TASK_ID}"
poll_api_status 30 "${t50_id}" succeeded || fail "ops: the warm-up task succeeds" "$(last_response)"

http GET "/status?json"
assert_status "status json: 200" 200
check "status json: JSON" "$(header Content-Type)" grep -q '^application/json' <<<"$(header Content-Type)"
check "status json: tasks by state" "$(last_response)" test "$(json tasks.succeeded)" -ge 1
check "status json: accepted requests" "$(last_response)" test "$(json accepted_conn)" -ge 2
check "status json: idle and active threads" "$(last_response)" test "$(json total_threads)" -eq 16
assert_eq "status json: queue limit" "1000" "$(json max_queued)"
assert_eq "status json: the store" "memory" "$(json store)"
http GET /status
assert_body_contains "status text: php-fpm style lines" 'accepted conn: '
assert_body_contains "status text: tasks by state" 'tasks succeeded: '

http GET /metrics
assert_status "metrics: 200" 200
check "metrics: Prometheus text format" "$(header Content-Type)" grep -q '^text/plain; version=0.0.4' <<<"$(header Content-Type)"
for t50_metric in 'longhaul_tasks{state="succeeded"}' 'longhaul_tasks_running_here' 'longhaul_queue_depth' \
    'longhaul_fastcgi_threads{state="idle"}' 'longhaul_process_start_time_seconds' \
    'longhaul_llm_call_duration_seconds_bucket' 'longhaul_llm_time_to_first_token_seconds_bucket' \
    'longhaul_llm_retries_total{error_type="overloaded_error"}' 'longhaul_llm_calls_total{outcome="succeeded"}' \
    'longhaul_llm_ratelimit_remaining{kind="requests"}'; do
    assert_body_contains "metrics: ${t50_metric}" "${t50_metric}"
done
check "nginx: status and metrics are loopback only" "no allow/deny" \
    grep -q 'deny all;' "${E2E_DIR}/snippets/longhaul-locations.conf"

check "access log: one line per request with status, duration and task id" "no request line for ${t50_id}" \
    grep -qE "http.method=GET http.path=/api/tasks/${t50_id} http.status=200|http.status=200.*task.id=${t50_id}" \
    "${E2E_DIR}/backend.log"
check "task log: the upstream request id, attempts and tokens" "no such task line" \
    grep -qE "job.attempts=2 .*task.id=${t50_id}|task.id=${t50_id}.*job.attempts=2" "${E2E_DIR}/backend.log"

# nginx's rate limit on starting tasks: 40 at once from one address, some get 429 with JSON. Each answer is kept,
# and a 429 among them is the one checked: a separate request after the burst can miss the empty bucket (on a
# loaded machine the burst takes long enough for it to refill).
t50_flood="${E2E_DIR}/flood"
rm -rf "${t50_flood}" && mkdir -p "${t50_flood}"
t50_codes="$(seq 1 40 | xargs -P 40 -I{} curl -s -o "${t50_flood}/{}.body" -D "${t50_flood}/{}.head" \
    -w '%{http_code} {}\n' --cacert "${E2E_DIR}/cert.pem" \
    -H 'Content-Type: application/json' -d '{"query":"e2e flood {}"}' "https://localhost:${E2E_PORT}/api/tasks")"
t50_counts="codes: $(cut -d' ' -f1 <<<"${t50_codes}" | sort | uniq -c | tr '\n' ' ')"
check "rate limit: a burst of 40 task creations gets some 429" "${t50_counts}" grep -q '^429 ' <<<"${t50_codes}"
check "rate limit: and some 202" "${t50_counts}" grep -q '^202 ' <<<"${t50_codes}"
t50_limited="$(awk '$1 == 429 { print $2; exit }' <<<"${t50_codes}")"
if [[ -n "${t50_limited}" ]]; then
    HTTP_STATUS=429
    cp "${t50_flood}/${t50_limited}.body" "${E2E_DIR}/last.body"
    HTTP_BODY="$(cat "${E2E_DIR}/last.body")"
    HTTP_HEADERS="$(tr -d '\r' <"${t50_flood}/${t50_limited}.head")"
    record_api_answer POST /api/tasks "${HTTP_STATUS}" "${HTTP_HEADERS}" "${HTTP_BODY}"
    assert_json_error "rate limit: the 429 is JSON for the API" 429 rate_limited
else
    fail "rate limit: the 429 is JSON for the API" "no 429 in the burst"
fi
sleep 3 # let the bucket refill for what follows

# Idempotency: the same Idempotency-Key (API) or form token (page) returns the same task, not a second paid call.
t50_key="e2e-$(random_task_id)"
http POST /api/tasks -H 'Content-Type: application/json' -H "Idempotency-Key: ${t50_key}" --data-binary '{"query":"e2e idempotent"}'
assert_status "idempotency: first request 202" 202
t50_first="$(json id)"
http POST /api/tasks -H 'Content-Type: application/json' -H "Idempotency-Key: ${t50_key}" --data-binary '{"query":"e2e idempotent"}'
assert_eq "idempotency: the resubmission returns the same task" "${t50_first}" "$(json id)"
http POST /api/tasks -H 'Content-Type: application/json' -H "Idempotency-Key: ${t50_key}-other" --data-binary '{"query":"e2e idempotent"}'
check "idempotency: another key is another task" "same id" test "$(json id)" != "${t50_first}"
http POST /api/tasks -H 'Content-Type: application/json' -H 'Idempotency-Key: has spaces' --data-binary '{"query":"x"}'
assert_json_error "idempotency: a malformed key is 400" 400
t50_token="form-$(random_task_id)"
http POST /generate -H 'HX-Request: true' --data-urlencode "query=e2e form token" --data-urlencode "idempotency_key=${t50_token}"
t50_form_first="$(task_id_in "${HTTP_BODY}")"
http POST /generate -H 'HX-Request: true' --data-urlencode "query=e2e form token" --data-urlencode "idempotency_key=${t50_token}"
assert_eq "idempotency: the page's form token makes a double submit one task" "${t50_form_first}" "$(task_id_in "${HTTP_BODY}")"
sleep 2 # the rate limit bucket

# Per-client limit on tasks in progress.
restart_backend "client limit: backend restarts with --max-tasks-per-client 1" --max-tasks-per-client 1
api_create "e2e my one task [mock:latency=10]"
assert_status "client limit: the first task is accepted" 202
t50_mine="${TASK_ID}"
api_create "e2e my second task"
assert_json_error "client limit: the second is refused with 429 too_many_tasks" 429 too_many_tasks
assert_header_match "client limit: with Retry-After" Retry-After '^[1-9][0-9]*$'
htmx_generate "e2e my second task again"
assert_status "client limit (page): 429" 429
assert_body_contains "client limit (page): a readable message" 'in progress'
http DELETE "/api/tasks/${t50_mine}"
poll_api_status 10 "${t50_mine}" cancelled || true
api_create "e2e after my first ended"
assert_status "client limit: once the first has ended, a new one is accepted" 202
restart_backend "ops: backend restarts with --shutdown-grace 3 again" --shutdown-grace 3

# Graceful stop: a short task running at SIGTERM drains; a long one is failed as interrupted after the grace.
api_create "e2e drain me [mock:latency=1.5]"
t50_short="${TASK_ID}"
api_create "e2e too long [mock:latency=60]"
t50_long="${TASK_ID}"
poll_api_status 20 "${t50_long}" running || true
poll_api_status 20 "${t50_short}" running || true
t50_pid="$(saved_pid "${E2E_DIR}" backend)"
kill -TERM "${t50_pid}"
if wait_until 30 process_gone "${t50_pid}"; then
    pass "drain: the backend stops after the grace period"
else
    fail "drain: the backend stops after the grace period" "still running"
fi
check "drain: the running short task finished during the drain" "no succeeded line for ${t50_short}" \
    grep -qE "task.id=${t50_short}.*task.status=succeeded|task.status=succeeded.*task.id=${t50_short}" "${E2E_DIR}/backend.log"
check "drain: the long task ended failed, interrupted by the shutdown" "no interrupted line for ${t50_long}" \
    grep -qE "error.type=interrupted.*task.id=${t50_long}|task.id=${t50_long}.*error.type=interrupted" "${E2E_DIR}/backend.log"
restart_backend "ops: backend back to defaults"

# The systemd units pass systemd-analyze verify (with ExecStart pointing at the binary under test).
t50_units="${E2E_DIR}/units"
mkdir -p "${t50_units}"
sed "s#/usr/bin/longhaul#${E2E_BIN}#" "${LONGHAUL_ROOT}/deploy/systemd/longhaul.service" >"${t50_units}/longhaul.service"
sed "s#/usr/bin/longhaul#${E2E_BIN}#" "${LONGHAUL_ROOT}/deploy/systemd/longhaul@.service" >"${t50_units}/longhaul@1.service"
for t50_unit in longhaul.service longhaul@1.service; do
    if t50_verify="$(systemd-analyze verify "${t50_units}/${t50_unit}" 2>&1)"; then
        pass "systemd: ${t50_unit} passes systemd-analyze verify"
    else
        fail "systemd: ${t50_unit} passes systemd-analyze verify" "${t50_verify}"
    fi
done
check "systemd: hardened (NoNewPrivileges, ProtectSystem=strict, socket mode 0660)" "a setting is missing" \
    grep -q -e '^NoNewPrivileges=yes' "${LONGHAUL_ROOT}/deploy/systemd/longhaul.service"
true
