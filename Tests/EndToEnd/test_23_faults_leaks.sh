#!/usr/bin/env bash
# shellcheck shell=bash
# Faults leave nothing behind (issue 8): the upstream refusing connections, a DNS failure, a TLS failure, slow
# clients on streams, clients vanishing mid-poll and mid-stream, the backend killed (SIGKILL) and restarted while
# nginx serves. Each fault is repeated enough times that a leak of one file descriptor or thread per occurrence
# exceeds the slack below; afterwards the backend must be idle again (no open stream or watcher, no LLM call in
# flight, no task stuck queued or running) with its fds and OS threads back to the baseline taken before.
# Sourced by run.sh.
#
# The baseline is taken from /proc/PID (fd entries, Threads:) of an idle backend after one warm-up occurrence of
# the fault, so that what a process creates once and keeps (libcurl's multi handle and its wake-up pipe, the Swift
# cooperative pool's threads, Dispatch worker threads) is already counted.
#
# Slack, and why a real leak still fails:
# - T23_FD_SLACK=4: libcurl keeps finished connections to the API in its connection cache (one per call that ran
#   at the same time as another, up to 4 × the transfers), so a burst may leave a few more sockets open than the
#   warm-up did. A leak of one fd per occurrence, repeated T23_REPEAT (>= 20) times, exceeds it fivefold.
# - T23_THREAD_SLACK=4: the cooperative pool grows up to one thread per core (2 here) on demand, Dispatch keeps an
#   idle worker thread for a few seconds, libcurl's threaded resolver runs one short-lived thread per lookup. Waits
#   are bounded polls until the count is back under the limit, so threads that exit late are not counted.
T23_FD_SLACK=4
T23_THREAD_SLACK=4
T23_REPEAT=24

backend_alive || restart_backend "faults/leaks: backend running"

# Prints "FDS THREADS" of the backend process from /proc. Fails when the process or /proc is not there.
t23_proc() {
    local pid fds threads
    pid="$(saved_pid "${E2E_DIR}" backend)"
    [[ -n "${pid}" && -d "/proc/${pid}/fd" ]] || return 1
    fds="$(find "/proc/${pid}/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
    threads="$(awk '/^Threads:/ { print $2 }' "/proc/${pid}/status" 2>/dev/null)"
    [[ -n "${threads}" ]] || return 1
    printf '%s %s\n' "${fds}" "${threads}"
}

# Fetches /status?json (loopback only, through nginx) and prints the counters that must be back to zero when the
# backend is idle: "streams=N watchers=N in_flight=N queued=N running=N busy=N" (busy counts this request's own
# FastCGI thread). Fails when there is no answer.
t23_status() {
    http GET "/status?json"
    [[ "${HTTP_STATUS}" == 200 ]] || return 1
    python3 - "${E2E_DIR}/last.body" <<'PY'
import json, sys
s = json.load(open(sys.argv[1], encoding="utf-8"))
tasks = s.get("tasks") or {}
print("streams=%s watchers=%s in_flight=%s queued=%s running=%s busy=%s" % (
    s.get("active_streams"), s.get("event_stream_watchers"), s.get("tasks_running_here"),
    tasks.get("queued"), tasks.get("running"), s.get("active_threads")))
PY
}

# The counters of an idle backend.
T23_IDLE="streams=0 watchers=0 in_flight=0 queued=0 running=0 busy=1"

# Succeeds when the backend is idle (see t23_status).
t23_idle() {
    [[ "$(t23_status)" == "${T23_IDLE}" ]]
}

# Takes the baseline: waits until the backend is idle, then records its fds and threads in t23_base_fds and
# t23_base_threads. $1: check name.
t23_baseline() {
    local proc
    if ! wait_until 60 t23_idle; then
        fail "$1: the backend is idle before the fault" "$(t23_status)"
    fi
    proc="$(t23_proc)" || {
        fail "$1: /proc shows the backend's fds and threads" "no /proc entry for the backend"
        return 1
    }
    read -r t23_base_fds t23_base_threads <<<"${proc}"
    printf '  (t=%s s) baseline for %s: %s fds, %s threads\n' "${SECONDS}" "$1" "${t23_base_fds}" "${t23_base_threads}"
}

# Succeeds when the backend's fds and threads are within the slack of the baseline.
t23_within_slack() {
    local fds threads
    read -r fds threads <<<"$(t23_proc)"
    [[ -n "${fds}" && -n "${threads}" ]] || return 1
    ((fds <= t23_base_fds + T23_FD_SLACK && threads <= t23_base_threads + T23_THREAD_SLACK))
}

# After a fault: the backend becomes idle (bounded poll: a vanished stream is noticed at its next write, a
# keep-alive at the latest, every 15 s), then its fds and threads come back within the slack of the baseline.
# $1: check name prefix.
t23_assert_no_leak() {
    local proc
    if wait_until 60 t23_idle; then
        pass "$1: idle again (no stream, watcher, LLM call in flight, queued or running task)"
    else
        fail "$1: idle again (no stream, watcher, LLM call in flight, queued or running task)" "$(t23_status)"
    fi
    wait_until 30 t23_within_slack || true
    proc="$(t23_proc)"
    printf '  (t=%s s) after %s: %s fds, %s threads (baseline %s, %s)\n' "${SECONDS}" "$1" "${proc% *}" "${proc#* }" \
        "${t23_base_fds}" "${t23_base_threads}"
    if t23_within_slack; then
        pass "$1: fds and threads back to the baseline (slack ${T23_FD_SLACK} fds, ${T23_THREAD_SLACK} threads)"
    else
        fail "$1: fds and threads back to the baseline (slack ${T23_FD_SLACK} fds, ${T23_THREAD_SLACK} threads)" \
            "now ${proc% *} fds, ${proc#* } threads; baseline ${t23_base_fds} fds, ${t23_base_threads} threads"
    fi
}

# Creates tasks through the API, paced under nginx's limit on task creation (10/s, burst 20), waits until each has
# finished and prints their outcomes counted, sorted: "N status/error_type;". One python process for speed.
# $1: how many. $2: the prompt (numbered).
t23_burst() {
    python3 - "${E2E_PORT}" "${E2E_DIR}/cert.pem" "$1" "$2" <<'PY' 2>>"${E2E_DIR}/e2e.log"
import collections, http.client, json, ssl, sys, time
port, cafile, count, prompt = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
def call(method, path, body=None):
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=20)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
ids, outcomes = [], collections.Counter()
for i in range(1, count + 1):
    status, body = call("POST", "/api/tasks", json.dumps({"query": f"{prompt} #{i}"}))
    if status == 202:
        ids.append(json.loads(body)["id"])
    else:
        outcomes[f"create-{status}/"] += 1
    time.sleep(0.1)
deadline = time.monotonic() + 60
for task_id in ids:
    while True:
        status, body = call("GET", f"/api/tasks/{task_id}")
        task = json.loads(body) if status == 200 else {"status": f"http-{status}"}
        if task.get("status") not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    outcomes[f"{task.get('status')}/{(task.get('error') or {}).get('type', '')}"] += 1
print("".join(f"{n} {outcome};" for outcome, n in sorted(outcomes.items())))
PY
}

# One upstream fault: restart the backend against a failing API, warm up, take the baseline, fail T23_REPEAT tasks,
# check their error and that nothing leaked. $1: the fault's name. $2: expected error type. $3: a word the error
# message must contain (case-insensitive). $@ (rest): longhaul flags.
t23_upstream_fault() {
    local name="$1" type="$2" word="$3"
    shift 3
    restart_backend "${name}: backend restarts" --max-retries 0 "$@"
    api_create "e2e ${name} warm-up"
    poll_api_status 60 "${TASK_ID}" failed || true
    assert_eq "${name}: the task fails as ${type}" "failed/${type}" "$(json status)/$(json error.type)"
    check "${name}: the message says '${word}'" "message: $(json error.message)" grep -qi -- "${word}" <<<"$(json error.message)"
    t23_baseline "${name}" || return 0
    assert_eq "${name}: ${T23_REPEAT} more tasks all fail as ${type}" "${T23_REPEAT} failed/${type};" \
        "$(t23_burst "${T23_REPEAT}" "e2e ${name}")"
    t23_assert_no_leak "${name} ×${T23_REPEAT}"
}

# --- The status page counts fds and threads ------------------------------------------------------------------------
http GET "/status?json"
t23_status_fds="$(json open_fds)"
t23_status_threads="$(json os_threads)"
read -r t23_proc_fds t23_proc_threads <<<"$(t23_proc)"
# The status request holds one more fd (its connection from nginx) while it counts; threads may come and go.
check "status: open_fds matches /proc (±2)" "status ${t23_status_fds}, /proc ${t23_proc_fds}" \
    test "$((t23_status_fds - t23_proc_fds))" -ge -2 -a "$((t23_status_fds - t23_proc_fds))" -le 2
check "status: os_threads matches /proc (±4)" "status ${t23_status_threads}, /proc ${t23_proc_threads}" \
    test "$((t23_status_threads - t23_proc_threads))" -ge -4 -a "$((t23_status_threads - t23_proc_threads))" -le 4
http GET /status
assert_body_contains "status text: open fds" 'open fds: '
assert_body_contains "status text: os threads" 'os threads: '
assert_body_contains "status text: heap in use" 'heap in use bytes: '
assert_body_contains "status text: heap held" 'heap held bytes: '
http GET /metrics
assert_body_contains "metrics: longhaul_process_open_fds" 'longhaul_process_open_fds '
assert_body_contains "metrics: longhaul_process_threads" 'longhaul_process_threads '
assert_body_contains "metrics: longhaul_process_heap_bytes in use" 'longhaul_process_heap_bytes{state="in_use"} '

# --- Upstream faults -------------------------------------------------------------------------------------------------
# Connection refused: a port nobody listens on.
t23_upstream_fault "refused" connection_error "could not connect" --base-url "http://127.0.0.1:$(free_port)"
# DNS failure: .invalid never resolves (RFC 6761). libcurl says "Could not resolve host", inside the message.
t23_upstream_fault "dns" connection_error "resolve host" --base-url "https://no-such-host.invalid"
# TLS failure: the test nginx's self-signed certificate is not trusted by the system's CA bundle.
t23_upstream_fault "tls" connection_error "certificate" --base-url "https://localhost:${E2E_PORT}"

# --- Clients: slow, vanishing mid-poll, vanishing mid-stream ---------------------------------------------------------
restart_backend "clients: backend restarts with the suite's flags"
api_create "e2e clients warm-up [mock:long=20]"
poll_api_status 30 "${TASK_ID}" succeeded || fail "clients: the warm-up task succeeds" "$(last_response)"
curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -o /dev/null \
    "https://localhost:${E2E_PORT}/api/tasks/${TASK_ID}/events" 2>>"${E2E_DIR}/e2e.log" || true
t23_baseline "clients"

# Slow clients: connections that ask for the events of a long finished task (megabytes) and never read, with a small
# receive buffer, so that nginx's buffers fill and the backend's writes block. Others must still be served.
T23_SLOW=6
api_create "e2e slow client reply [mock:long=150000]"
t23_long="${TASK_ID}"
# The bound only stops a hang: 150,000 deltas take seconds, over a minute under AddressSanitizer on a loaded machine.
poll_api_status 240 "${t23_long}" succeeded || fail "slow client: the long task succeeds" "$(last_response)"
t23_long_bytes="$(json result | wc -c)"
rm -f "${E2E_DIR}/t23_slow.ready" "${E2E_DIR}/t23_slow.stop"
python3 - "${E2E_PORT}" "/api/tasks/${t23_long}/events" "${T23_SLOW}" "${E2E_DIR}/cert.pem" \
    "${E2E_DIR}/t23_slow.ready" "${E2E_DIR}/t23_slow.stop" <<'PY' 2>>"${E2E_DIR}/e2e.log" &
import os, socket, ssl, sys, time
port, path, count, cafile, ready, stop = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
context = ssl.create_default_context(cafile=cafile)
clients = []
for _ in range(count):
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    client = context.wrap_socket(raw, server_hostname="localhost")
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n".encode())
    clients.append(client)
open(ready, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.1)
for client in clients:
    client.close()
PY
t23_slow_pid=$!
t23_streams_open() { [[ "$(t23_status)" == streams=${T23_SLOW}* ]]; }
if wait_until_alive "${t23_slow_pid}" 30 test -f "${E2E_DIR}/t23_slow.ready" && wait_until 30 t23_streams_open; then
    pass "slow client: ${T23_SLOW} non-reading clients hold streams of a ${t23_long_bytes}-byte answer"
else
    fail "slow client: ${T23_SLOW} non-reading clients hold streams of a ${t23_long_bytes}-byte answer" "$(t23_status)"
fi
t23_during="$(t23_proc)"
printf '  while %s slow clients hold streams: %s fds, %s threads\n' "${T23_SLOW}" "${t23_during% *}" "${t23_during#* }"
http GET /ping
assert_eq "slow client: /ping still answers meanwhile" "200 pong" "${HTTP_STATUS} ${HTTP_BODY}"
api_create "e2e served beside slow clients"
t23_beside="${TASK_ID}"
if poll_api_status 30 "${t23_beside}" succeeded; then
    pass "slow client: a new task completes meanwhile"
else
    fail "slow client: a new task completes meanwhile" "$(last_response)"
fi
# A stream of another task is not held up behind the blocked writes of the slow ones.
curl -sS -N --max-time 15 --cacert "${E2E_DIR}/cert.pem" -o "${E2E_DIR}/t23_beside.out" \
    "https://localhost:${E2E_PORT}/api/tasks/${t23_beside}/events" 2>>"${E2E_DIR}/e2e.log" || true
check "slow client: another stream is served meanwhile (its done event arrives)" \
    "got: $(head -c 200 "${E2E_DIR}/t23_beside.out" 2>/dev/null | tr '\n' ' ')" grep -q '^event: done' "${E2E_DIR}/t23_beside.out"
: >"${E2E_DIR}/t23_slow.stop"
wait_until 20 process_gone "${t23_slow_pid}" || kill "${t23_slow_pid}" 2>/dev/null || true
wait "${t23_slow_pid}" 2>/dev/null || true
t23_assert_no_leak "slow clients gone"

# Clients vanishing mid-poll: curl killed while its /check is in flight, and clients that send the request and
# close before the answer. The task is neither cancelled nor lost.
api_create "e2e polled by vanishing clients [mock:latency=4]"
t23_polled="${TASK_ID}"
for ((t23_i = 1; t23_i <= T23_REPEAT; t23_i++)); do
    curl -sS --max-time 10 --cacert "${E2E_DIR}/cert.pem" -H 'HX-Request: true' -o /dev/null \
        "https://localhost:${E2E_PORT}/check?task_id=${t23_polled}" 2>/dev/null &
    t23_curl=$!
    # Vary the moment: before the connection, during the TLS handshake, after the request.
    sleep "0.0$((t23_i % 4))"
    kill -KILL "${t23_curl}" 2>/dev/null || true
    wait "${t23_curl}" 2>/dev/null || true
done
python3 - "${E2E_PORT}" "/check?task_id=${t23_polled}" "${T23_REPEAT}" "${E2E_DIR}/cert.pem" <<'PY' 2>>"${E2E_DIR}/e2e.log" || true
import socket, ssl, sys
port, path, count, cafile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
context = ssl.create_default_context(cafile=cafile)
for _ in range(count):
    client = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nHX-Request: true\r\n\r\n".encode())
    client.close()
PY
http GET /ping
assert_eq "vanishing pollers: the backend still answers" "200 pong" "${HTTP_STATUS} ${HTTP_BODY}"
if poll_api_status 30 "${t23_polled}" succeeded; then
    pass "vanishing pollers: the task still completes"
else
    fail "vanishing pollers: the task still completes" "$(last_response)"
fi
t23_assert_no_leak "vanishing pollers ×$((2 * T23_REPEAT))"

# Clients vanishing mid-stream: curl killed after its first delta, on the API's and the page's stream, while the
# task is still answering. Each stream is freed at its next write; the task goes on to its result.
api_create "e2e streamed to vanishing clients [mock:latency=15] [mock:long=450]"
t23_streamed="${TASK_ID}"
t23_offset="$(wc -c <"${E2E_DIR}/backend.log")"
t23_killed=0
for ((t23_i = 1; t23_i <= T23_REPEAT; t23_i++)); do
    t23_path="/api/tasks/${t23_streamed}/events"
    ((t23_i % 2 == 0)) && t23_path="/stream?task_id=${t23_streamed}"
    : >"${E2E_DIR}/t23_vanish.out"
    curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -o "${E2E_DIR}/t23_vanish.out" \
        "https://localhost:${E2E_PORT}${t23_path}" 2>/dev/null &
    t23_curl=$!
    if wait_until_alive "${t23_curl}" 10 grep -q '^event: delta' "${E2E_DIR}/t23_vanish.out"; then
        t23_killed=$((t23_killed + 1))
    fi
    kill -KILL "${t23_curl}" 2>/dev/null || true
    wait "${t23_curl}" 2>/dev/null || true
done
http GET "/api/tasks/${t23_streamed}"
assert_eq "vanishing streams: all ${T23_REPEAT} clients were killed mid-stream, the task still running" \
    "${T23_REPEAT} running" "${t23_killed} $(json status)"
if poll_api_status 60 "${t23_streamed}" succeeded; then
    pass "vanishing streams: the task still completes"
else
    fail "vanishing streams: the task still completes" "$(last_response)"
fi
t23_assert_no_leak "vanishing streams ×${T23_REPEAT}"
t23_gone="$(tail -c +"$((t23_offset + 1))" "${E2E_DIR}/backend.log" | grep -c "stream.end=client gone" || true)"
check "vanishing streams: the backend saw each client go (${t23_gone} 'client gone' of ${T23_REPEAT})" \
    "only ${t23_gone}" test "${t23_gone}" -ge "${T23_REPEAT}"

# --- The backend killed (SIGKILL) and started again while nginx serves -------------------------------------------------
t23_clients_fds="${t23_base_fds}"
t23_clients_threads="${t23_base_threads}"
api_create "e2e lost with its process [mock:latency=30]"
t23_lost="${TASK_ID}"
poll_api_status 20 "${t23_lost}" running || true
t23_pid="$(saved_pid "${E2E_DIR}" backend)"
kill -KILL "${t23_pid}" 2>/dev/null || true
# Reap it here, quietly (the shell would otherwise report the killed job).
wait "${t23_pid}" 2>/dev/null || true
if wait_until 10 process_gone "${t23_pid}"; then
    pass "kill -9: the backend is gone"
else
    fail "kill -9: the backend is gone" "pid ${t23_pid} still runs"
fi
# nginx's own answers while nothing serves the socket (test_99 checks them in detail).
http GET /
assert_status "kill -9: nginx answers its friendly 503 page meanwhile" 503
http GET "/api/tasks/${t23_lost}"
assert_json_error "kill -9: and JSON 503 for the API" 503 backend_unavailable
restart_backend "kill -9: the backend starts again on the same socket"
http GET /ping
assert_eq "kill -9: the new process serves" "200 pong" "${HTTP_STATUS} ${HTTP_BODY}"
# The memory store lives and dies with its process: the running task is gone (a Redis store keeps it and another
# process takes it over: test_30).
http GET "/api/tasks/${t23_lost}"
assert_json_error "kill -9: with the memory store the killed process's task is gone (404)" 404
api_create "e2e after the restart [mock:long=20]"
if poll_api_status 30 "${TASK_ID}" succeeded; then
    pass "kill -9: a task submitted after the restart completes"
else
    fail "kill -9: a task submitted after the restart completes" "$(last_response)"
fi
curl -sS -N --max-time 30 --cacert "${E2E_DIR}/cert.pem" -o /dev/null \
    "https://localhost:${E2E_PORT}/api/tasks/${TASK_ID}/events" 2>>"${E2E_DIR}/e2e.log" || true
# The new process, after the same warm-up, starts from the same counts as the one before the client faults.
t23_base_fds="${t23_clients_fds}"
t23_base_threads="${t23_clients_threads}"
t23_assert_no_leak "kill -9: the new process"

restart_backend "faults/leaks: backend back to defaults"
true
