#!/usr/bin/env bash
# shellcheck shell=bash
# Scale-out on Redis (issue 5): a real redis-server, three backend processes behind one nginx upstream. Tasks
# spread over them and are checked, streamed and cancelled through any of them; the in-flight limit holds across
# processes; a process killed with kill -9 mid-task loses nothing (another takes the task over after the lease);
# Redis restarted mid-run loses nothing. Then the single in-memory backend comes back for the tests after this one.
# Sourced by run.sh.

# t30_poll, without its check of the single backend (stopped here). $1: seconds. $2: id. $@: states.
t30_poll() {
    local timeout="$1" id="$2" deadline wanted
    shift 2
    deadline=$((SECONDS + timeout))
    while true; do
        http GET "/api/tasks/${id}"
        for wanted in "$@"; do
            [[ "$(json status)" == "${wanted}" ]] && return 0
        done
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}
t30_mock() { curl -s --max-time 5 "http://127.0.0.1:${MOCK_PORT}/mock/$1" -X "${2:-GET}"; }
t30_mock_stat() { t30_mock stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
t30_requests_for() {
    t30_mock stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_by_prompt"].get(sys.argv[1], 0))' "$1"
}

stop_backend "${E2E_DIR}" 20 || true
if start_redis "${E2E_DIR}" 2>>"${E2E_DIR}/e2e.log"; then
    pass "redis: a real redis-server runs"
else
    fail "redis: a real redis-server runs" "$(tail -n 3 "${E2E_DIR}/redis.log" 2>/dev/null)"
fi
t30_flags=(--store "${REDIS_URL}" --lease-timeout 3 --max-in-flight 2 --log-level debug)
t30_sockets=""
for t30_n in 1 2 3; do
    if BACKEND_NAME="backend-${t30_n}" start_backend "${E2E_DIR}" "${E2E_DIR}/longhaul-${t30_n}.sock" "${E2E_BIN}" \
        "${t30_flags[@]}" 2>>"${E2E_DIR}/e2e.log"; then
        pass "redis: backend process ${t30_n} starts with --store"
    else
        fail "redis: backend process ${t30_n} starts with --store" "$(tail -n 3 "${E2E_DIR}/backend-${t30_n}.log")"
    fi
    t30_sockets+="${E2E_DIR}/longhaul-${t30_n}.sock "
done
if render_nginx "${E2E_DIR}" "${E2E_PORT}" "${t30_sockets}" 2>>"${E2E_DIR}/e2e.log" && reload_nginx "${E2E_DIR}"; then
    pass "redis: nginx reloads with a three-process upstream"
else
    fail "redis: nginx reloads with a three-process upstream" "$(tail -n 5 "${E2E_DIR}/error.log")"
fi
t30_mock reset POST >/dev/null

# --- Tasks spread over the processes; the limit of 2 in flight holds across all three -----------------------------
t30_ids=()
for t30_n in $(seq 1 10); do
    api_create "e2e spread ${t30_n} [mock:latency=1]"
    t30_ids+=("${TASK_ID}")
done
t30_all_done=1
for t30_n in $(seq 1 10); do
    if ! t30_poll 60 "${t30_ids[$((t30_n - 1))]}" succeeded; then t30_all_done=0; fi
    if [[ "$(json result)" != "Mock reply to: e2e spread ${t30_n} [mock:latency=1]" ]]; then t30_all_done=0; fi
done
assert_eq "redis: 10 tasks through 3 processes all succeed with the right reply" "1" "${t30_all_done}"
t30_count_runners() {
    t30_ran=0
    for t30_n in 1 2 3; do
        grep -q 'task.status=succeeded' "${E2E_DIR}/backend-${t30_n}.log" && t30_ran=$((t30_ran + 1))
    done
}
t30_count_runners
# Which process runs a task is a race, not an assignment: with two slots across all three, a process that wins
# both first claims keeps them (each finished run claims the next task at once), and a loaded machine makes that
# likelier. Another batch (at most three, a few seconds each) gives the other processes their chance again: what
# must hold is that tasks can run in any process, not that one batch spread.
for t30_batch in 1 2 3; do
    [[ ${t30_ran} -ge 2 ]] && break
    t30_batch_ids=()
    for t30_n in 1 2 3 4; do
        api_create "e2e spread again ${t30_batch}.${t30_n} [mock:latency=1]"
        t30_batch_ids+=("${TASK_ID}")
    done
    for t30_id in "${t30_batch_ids[@]}"; do t30_poll 60 "${t30_id}" succeeded || true; done
    t30_count_runners
done
check "redis: tasks ran in more than one process" "only ${t30_ran} process ran tasks (in 4 batches)" \
    test "${t30_ran}" -ge 2
t30_peak="$(t30_mock_stat max_concurrent_streams)"
check "redis: at most 2 LLM calls in flight across the 3 processes" "the mock saw ${t30_peak} at once" \
    test "${t30_peak}" -le 2
t30_ok=1
for t30_n in 1 2 3 4 5 6; do
    http GET "/check?task_id=${t30_ids[0]}" -H 'HX-Request: true'
    [[ "${HTTP_STATUS}" == 200 && "${HTTP_BODY}" == *'<h2>Result</h2>'* ]] || t30_ok=0
done
assert_eq "redis: a task is checked through every process (6 checks round robin)" "1" "${t30_ok}"
t30_out="${E2E_DIR}/t30_stream.out"
curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -H 'Last-Event-ID: 10' -o "${t30_out}" \
    "https://localhost:${E2E_PORT}/api/tasks/${t30_ids[1]}/events" 2>>"${E2E_DIR}/e2e.log" || true
check "redis: Last-Event-ID resumes on any process" "$(head -c 200 "${t30_out}" | tr '\n' ' ')" \
    grep -q '"text":" to: e2e spread 2' "${t30_out}"

# --- Cancel through whichever process nginx picks ------------------------------------------------------------------
t30_aborted_before="$(t30_mock_stat streams_aborted)"
api_create "e2e redis cancel [mock:latency=30] [mock:long=100]"
t30_cancel="${TASK_ID}"
t30_poll 30 "${t30_cancel}" running || true
t30_has_text() { http GET "/api/tasks/${t30_cancel}" && test -n "$(json result)"; }
wait_until 10 t30_has_text || true
http DELETE "/api/tasks/${t30_cancel}"
check "redis: cancel answers" "$(last_response)" test "${HTTP_STATUS}" = 200
if t30_poll 10 "${t30_cancel}" cancelled; then
    pass "redis: the running task is cancelled (by the process that runs it)"
else
    fail "redis: the running task is cancelled (by the process that runs it)" "$(last_response)"
fi
t30_aborted() { test "$(t30_mock_stat streams_aborted)" -gt "${t30_aborted_before}"; }
check "redis: its upstream request was aborted" "streams_aborted did not grow" wait_until 5 t30_aborted

# --- kill -9 a process mid-task: another one takes the task over ---------------------------------------------------
t30_mock reset POST >/dev/null
t30_kill_ids=()
for t30_n in 1 2 3; do
    api_create "e2e survive ${t30_n} [mock:latency=6]"
    t30_kill_ids+=("${TASK_ID}")
done
t30_poll 30 "${t30_kill_ids[0]}" running || true
t30_victim=""
for t30_n in 1 2 3; do
    if grep -q "task.id=${t30_kill_ids[0]} .*task running" "${E2E_DIR}/backend-${t30_n}.log"; then t30_victim="${t30_n}"; fi
done
if [[ -n "${t30_victim}" ]]; then
    pass "redis: the process running a task is found (backend-${t30_victim})"
    kill -KILL "$(saved_pid "${E2E_DIR}" "backend-${t30_victim}")" 2>/dev/null || true
    t30_all=1
    for t30_n in 1 2 3; do
        t30_poll 60 "${t30_kill_ids[$((t30_n - 1))]}" succeeded failed || true
        [[ "$(json status)" == succeeded && "$(json result)" == "Mock reply to: e2e survive ${t30_n} [mock:latency=6]" ]] ||
            t30_all=0
    done
    assert_eq "kill -9: every task completes with the right reply" "1" "${t30_all}"
    assert_eq "kill -9: the killed process's task was run again (2 upstream calls)" "2" \
        "$(t30_requests_for "e2e survive 1 [mock:latency=6]")"
    t30_max_calls="$(t30_mock stats | python3 -c 'import json,sys; print(max(json.load(sys.stdin)["requests_by_prompt"].values()))')"
    check "kill -9: at most one extra attempt per task" "a prompt was sent ${t30_max_calls} times" test "${t30_max_calls}" -le 2
    # A client that had attempt 1's first bytes resumes after the takeover: reset, then attempt 2's whole text.
    t30_resume="${E2E_DIR}/t30_takeover_resume.out"
    curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -H 'Last-Event-ID: 1-5' -o "${t30_resume}" \
        "https://localhost:${E2E_PORT}/api/tasks/${t30_kill_ids[0]}/events" 2>>"${E2E_DIR}/e2e.log" || true
    check "kill -9: a resume with attempt 1's event id gets reset first" "$(head -c 300 "${t30_resume}")" \
        grep -q '^event: reset' "${t30_resume}"
    t30_resumed_text="$(sed -n 's/^data: //p' "${t30_resume}" | python3 -c '
import json, sys
text = ""
for line in sys.stdin:
    try:
        value = json.loads(line)
    except ValueError:
        continue
    if isinstance(value, dict) and set(value) == {"text"}:
        text += value["text"]
print(text)')"
    assert_eq "kill -9: after the reset, the new attempt's whole text (no splice)" \
        "Mock reply to: e2e survive 1 [mock:latency=6]" "${t30_resumed_text}"
    check "kill -9: event ids name attempt 2 and its claim (2.TAG-BYTES)" "$(grep '^id:' "${t30_resume}" | tail -n 1)" grep -qE '^id: 2\.[0-9a-f]{1,8}-' "${t30_resume}"
    http GET "/api/tasks/${t30_kill_ids[0]}"
    assert_eq "kill -9: the takeover is counted (attempts 1 on the new process's LLM call)" "1" "$(json attempts)"
else
    fail "redis: the process running a task is found" "no backend log has 'task running' for ${t30_kill_ids[0]}"
fi

# --- Redis restarts mid-run ----------------------------------------------------------------------------------------
api_create "e2e redis restart [mock:latency=4]"
t30_restart="${TASK_ID}"
t30_poll 20 "${t30_restart}" running || true
stop_redis "${E2E_DIR}" || true
http GET "/api/tasks/${t30_restart}"
assert_json_error "redis down: the API answers 503 store_unavailable" 503 store_unavailable
api_create "e2e while redis is down"
assert_json_error "redis down: generate answers 503, nothing half-created" 503 store_unavailable
http GET "/check?task_id=${t30_restart}" -H 'HX-Request: true'
assert_status "redis down: the page gets 503 too" 503
check "redis down: with a readable message" "$(last_response)" grep -qi 'unavailable' <<<"${HTTP_BODY}"
if start_redis "${E2E_DIR}" 2>>"${E2E_DIR}/e2e.log"; then
    pass "redis: restarts with its data"
else
    fail "redis: restarts with its data" "$(tail -n 3 "${E2E_DIR}/redis.log")"
fi
if t30_poll 60 "${t30_restart}" succeeded; then
    pass "redis restart: the task accepted before completes"
else
    fail "redis restart: the task accepted before completes" "$(last_response)"
fi
assert_eq "redis restart: with the right reply" "Mock reply to: e2e redis restart [mock:latency=4]" "$(json result)"
http GET "/api/tasks/${t30_ids[0]}"
assert_eq "redis restart: earlier results are still there" "succeeded" "$(json status)"
for t30_n in 1 2 3; do
    assert_file_lacks "redis: no API key in backend-${t30_n}.log" "${E2E_KEY}" "${E2E_DIR}/backend-${t30_n}.log"
done

# --- Back to one in-memory backend ---------------------------------------------------------------------------------
for t30_n in 1 2 3; do BACKEND_NAME="backend-${t30_n}" stop_backend "${E2E_DIR}" 20 >/dev/null 2>&1 || true; done
stop_redis "${E2E_DIR}" || true
restart_backend "redis: the single in-memory backend comes back"
if render_nginx "${E2E_DIR}" "${E2E_PORT}" "${E2E_SOCKET}" 2>>"${E2E_DIR}/e2e.log" && reload_nginx "${E2E_DIR}"; then
    pass "redis: nginx back to one backend"
else
    fail "redis: nginx back to one backend" "$(tail -n 5 "${E2E_DIR}/error.log")"
fi
true
