#!/usr/bin/env bash
# shellcheck shell=bash
# scripts/run supervises its processes (issue 14, item 10). It runs here in its own folder and on its own port
# (LONGHAUL_BIN: no build; LONGHAUL_STORE=local, LONGHAUL_PROCESSES=3, its own mock): a backend killed with kill -9
# mid-task is logged and restarted on its socket while nginx and the other two keep answering, and the task
# completes; the restarted process serves through nginx; the mock and redis-server are restarted too; a backend that
# keeps dying is given up after 5 failures in 10 s while the rest serve; Ctrl-C (SIGINT to its process group, as a
# terminal sends it) stops everything it started: no process, pid file or socket is left. Sourced by run.sh.

t31_dir="${E2E_DIR}/run31"
t31_out="${E2E_DIR}/run31.out"
t31_port="$(free_port)"
t31_pid=""

# Stops the scripts/run started here, then anything it left. Runs at the end of this file and, through
# E2E_CLEANUP_HOOKS, when run.sh ends early. Safe to call again.
t31_cleanup() {
    if [[ -n "${t31_pid}" ]] && pid_alive "${t31_pid}"; then
        kill -TERM "${t31_pid}" 2>/dev/null || true
        if ! wait_until 40 process_gone "${t31_pid}"; then
            # Its own process group (setsid below): everything it started.
            kill -KILL -- "-${t31_pid}" 2>/dev/null || true
        fi
    fi
    if [[ -n "${t31_pid}" ]]; then
        wait "${t31_pid}" 2>/dev/null || true
    fi
    stop_all "${t31_dir}" >/dev/null 2>&1 || true
}

# http(), api_create() and json polls against this scripts/run's nginx (same certificate as the suite's, copied).
# shellcheck disable=SC2034 # E2E_PORT is read by http(), which sees this local.
t31_http() {
    local E2E_PORT="${t31_port}"
    http "$@"
}
# shellcheck disable=SC2034 # as above
t31_api_create() {
    local E2E_PORT="${t31_port}"
    api_create "$@"
}
# $1: seconds. $2: task id. $@ (rest): accepted states. The last answer stays in HTTP_*.
t31_poll() {
    local timeout="$1" id="$2" deadline wanted
    shift 2
    deadline=$((SECONDS + timeout))
    while true; do
        t31_http GET "/api/tasks/${id}"
        for wanted in "$@"; do
            [[ "$(json status)" == "${wanted}" ]] && return 0
        done
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}
t31_serving() { grep -q '^Longhaul is running at' "${t31_out}"; }
t31_pid_of() { saved_pid "${t31_dir}" "$1"; }
# Succeeds when NAME has a live pid other than OLD. $1: name. $2: the old pid.
t31_replaced() {
    local pid
    pid="$(t31_pid_of "$1")"
    [[ -n "${pid}" && "${pid}" != "$2" ]] && pid_alive "${pid}"
}
t31_logged() { grep -qF -- "$1" "${t31_dir}/run.log"; }
# Succeeds when every given pid is alive.
t31_all_alive() {
    local pid
    for pid in "$@"; do
        pid_alive "${pid}" || return 1
    done
}

if [[ -f "${LONGHAUL_ROOT}/.env" ]]; then
    # scripts/run would read .env (maybe a real key): not for a test.
    printf 'SKIP run supervise: %s/.env exists\n' "${LONGHAUL_ROOT}"
    return 0
fi

mkdir -p "${t31_dir}"
cp "${E2E_DIR}/cert.pem" "${E2E_DIR}/key.pem" "${t31_dir}/"
E2E_CLEANUP_HOOKS+=(t31_cleanup)
# setsid: its own process group, so that SIGINT can go to the whole group as a terminal's Ctrl-C does.
# --default-signal=INT: a background job of a script starts with SIGINT ignored, which bash could not trap.
setsid env --default-signal=INT -u ANTHROPIC_API_KEY -u ANTHROPIC_BASE_URL \
    LONGHAUL_BIN="${E2E_BIN}" LONGHAUL_RUN_DIR="${t31_dir}" LONGHAUL_HTTPS_PORT="${t31_port}" \
    LONGHAUL_STORE=local LONGHAUL_PROCESSES=3 LONGHAUL_RUN_FLAGS="--log-level debug --lease-timeout 3" \
    MOCK_LATENCY=0.3 "${LONGHAUL_ROOT}/scripts/run" >"${t31_out}" 2>&1 &
t31_pid=$!

if wait_until_alive "${t31_pid}" 120 t31_serving; then
    pass "run supervise: scripts/run (LONGHAUL_BIN, 3 processes, local redis) serves"
else
    fail "run supervise: scripts/run (LONGHAUL_BIN, 3 processes, local redis) serves" "$(tail -n 5 "${t31_out}")"
fi
t31_up=0
for t31_name in mock redis backend-1 backend-2 backend-3 nginx; do
    pid_alive "$(t31_pid_of "${t31_name}")" && t31_up=$((t31_up + 1))
done
assert_eq "run supervise: mock, redis, 3 backends and nginx run" "6" "${t31_up}"

# --- kill -9 the backend that runs a task -------------------------------------------------------------------------
t31_query="e2e supervise [mock:latency=5]"
t31_api_create "${t31_query}"
t31_task="${TASK_ID}"
t31_poll 30 "${t31_task}" running || true
t31_victim="backend-2"
for t31_n in 1 2 3; do
    if grep -q "task.id=${t31_task} .*task running" "${t31_dir}/backend-${t31_n}.log" 2>/dev/null; then
        t31_victim="backend-${t31_n}"
    fi
done
t31_others=()
for t31_name in nginx mock redis backend-1 backend-2 backend-3; do
    [[ "${t31_name}" == "${t31_victim}" ]] || t31_others+=("$(t31_pid_of "${t31_name}")")
done
t31_old="$(t31_pid_of "${t31_victim}")"
t31_kill_time="${EPOCHREALTIME/,/.}"
kill -KILL "${t31_old}" 2>/dev/null || true

# Right after the kill (the restart takes a few tenths of a second): every request still gets its answer.
t31_ok=0
for t31_n in $(seq 1 10); do
    t31_http GET "/api/tasks/${t31_task}"
    [[ "${HTTP_STATUS}" == 200 ]] && t31_ok=$((t31_ok + 1))
done
assert_eq "run supervise: right after kill -9 of ${t31_victim}, nginx answers 10 of 10 through the others" "10" \
    "${t31_ok}"
check "run supervise: nginx and the other processes were not touched" "one of ${t31_others[*]} is gone" \
    t31_all_alive "${t31_others[@]}"
if wait_until 20 t31_replaced "${t31_victim}" "${t31_old}"; then
    pass "run supervise: ${t31_victim} is restarted (new pid $(t31_pid_of "${t31_victim}"))"
else
    fail "run supervise: ${t31_victim} is restarted" "$(tail -n 5 "${t31_out}")"
fi
check "run supervise: the death is logged with its signal and log file" "$(tail -n 5 "${t31_dir}/run.log")" \
    t31_logged "${t31_victim} (pid ${t31_old}) was killed by signal 9 (SIGKILL) after"
# The new pid file comes first; "restarted" once its socket is there and it still runs.
check "run supervise: the restart is logged" "$(tail -n 5 "${t31_dir}/run.log")" \
    wait_until 30 t31_logged "${t31_victim} restarted (pid $(t31_pid_of "${t31_victim}"), restart 1)"
check "run supervise: on the same socket" "no ${t31_victim} socket" \
    test -S "${t31_dir}/longhaul-${t31_victim#backend-}.sock"
check "run supervise: and shows on scripts/run's output" "$(tail -n 5 "${t31_out}")" \
    grep -qF "${t31_victim} restarted" "${t31_out}"
if t31_poll 60 "${t31_task}" succeeded failed; then
    assert_eq "run supervise: the task accepted before the kill completes" "succeeded ${t31_query}" \
        "$(json status) $(json result | sed 's/^Mock reply to: //')"
else
    fail "run supervise: the task accepted before the kill completes" "$(last_response)"
fi

# The restarted process answers through nginx (nginx leaves a failed server alone for fail_timeout, 10 s): its
# /metrics start time is after the kill.
t31_new_serves() {
    local started
    t31_http GET /metrics
    started="$(awk '$1 == "longhaul_process_start_time_seconds" { print $2 }' <<<"${HTTP_BODY}")"
    [[ -n "${started}" ]] && awk -v started="${started}" -v killed="${t31_kill_time}" \
        'BEGIN { exit !(started + 0 >= killed + 0) }'

}
check "run supervise: the restarted backend serves through nginx" "no /metrics answer from a process started after" \
    wait_until 40 t31_new_serves

# --- The mock and redis-server: restarted too (same port, same data) -----------------------------------------------
t31_mock_port="$(cat "${t31_dir}/mock.port")"
t31_old="$(t31_pid_of mock)"
kill -KILL "${t31_old}" 2>/dev/null || true
check "run supervise: the mock is restarted after kill -9" "$(tail -n 5 "${t31_dir}/run.log")" \
    wait_until 30 t31_logged "mock restarted (pid"
assert_eq "run supervise: on the same port" "${t31_mock_port}" "$(cat "${t31_dir}/mock.port" 2>/dev/null)"
t31_old="$(t31_pid_of redis)"
kill -KILL "${t31_old}" 2>/dev/null || true
check "run supervise: redis-server is restarted after kill -9" "$(tail -n 5 "${t31_dir}/run.log")" \
    wait_until 30 t31_logged "redis restarted (pid"
# The backends reconnect to redis with a backoff: until then, creating a task answers 503 store_unavailable.
t31_created() {
    t31_api_create "e2e supervise after restarts"
    [[ -n "${TASK_ID}" ]]
}
wait_until 30 t31_created || true
t31_second="${TASK_ID}"
if t31_poll 40 "${t31_second}" succeeded; then
    pass "run supervise: a new task succeeds through the restarted mock and redis"
else
    fail "run supervise: a new task succeeds through the restarted mock and redis" "$(last_response)"
fi
t31_http GET "/api/tasks/${t31_task}"
assert_eq "run supervise: redis kept the earlier task" "succeeded" "$(json status)"

# --- A backend that keeps dying is given up; the others keep serving -----------------------------------------------
t31_flappy="backend-3"
t31_gave_up() { t31_logged "ERROR: ${t31_flappy} failed 5 times within 10 s; giving up on it"; }
# The next start (its pid file comes before it is up: killed then, the start fails), or the end.
t31_next() { t31_replaced "${t31_flappy}" "${t31_old}" || t31_gave_up; }
for t31_n in $(seq 1 8); do
    t31_gave_up && break
    t31_old="$(t31_pid_of "${t31_flappy}")"
    [[ -n "${t31_old}" ]] && kill -KILL "${t31_old}" 2>/dev/null
    wait_until 15 t31_next || true
done
check "run supervise: 5 failures within 10 s: ${t31_flappy} is given up, with an error" \
    "$(tail -n 5 "${t31_dir}/run.log")" t31_gave_up
check "run supervise: scripts/run goes on" "it exited: $(tail -n 3 "${t31_out}")" pid_alive "${t31_pid}"
t31_ok=0
for t31_n in $(seq 1 6); do
    t31_http GET "/api/tasks/${t31_task}"
    [[ "${HTTP_STATUS}" == 200 ]] && t31_ok=$((t31_ok + 1))
done
assert_eq "run supervise: the two other backends keep serving (6 of 6)" "6" "${t31_ok}"

# --- Ctrl-C stops everything -----------------------------------------------------------------------------------------
t31_all=()
for t31_file in "${t31_dir}"/pids/*.pid; do
    [[ -e "${t31_file}" ]] && t31_all+=("$(cat "${t31_file}")")
done
kill -INT -- "-${t31_pid}" 2>/dev/null || true
if wait_until 40 process_gone "${t31_pid}"; then
    pass "run supervise: Ctrl-C (SIGINT to its group) ends scripts/run within 40 s"
else
    fail "run supervise: Ctrl-C (SIGINT to its group) ends scripts/run within 40 s" "$(tail -n 3 "${t31_out}")"
fi
t31_rc=0
wait "${t31_pid}" 2>/dev/null || t31_rc=$?
assert_eq "run supervise: with exit status 0" "0" "${t31_rc}"
t31_left=""
for t31_p in "${t31_all[@]}"; do
    pid_alive "${t31_p}" && t31_left+="${t31_p} "
done
assert_eq "run supervise: none of the ${#t31_all[@]} processes it started is left" "" "${t31_left}"
t31_files="$(cd "${t31_dir}" && find . -name '*.pid' -o -name '*.sock' | tr '\n' ' ')"
assert_eq "run supervise: no pid file or socket is left" "" "${t31_files}"
refute "run supervise: nothing listens on its port any more" "port ${t31_port} still answers" \
    curl -s -o /dev/null --max-time 3 --cacert "${t31_dir}/cert.pem" "https://localhost:${t31_port}/"
t31_cleanup
true
