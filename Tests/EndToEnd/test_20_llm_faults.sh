#!/usr/bin/env bash
# shellcheck shell=bash
# Every fault of the mock LLM ends in the right state, with the right error type and attempt count (issue 3).
# Sourced by run.sh.

backend_alive || restart_backend "faults: backend running" 

# Requests the mock saw for one prompt. $1: the prompt.
mock_requests_for() {
    curl -s --max-time 5 "http://127.0.0.1:${MOCK_PORT}/mock/stats" | python3 -c '
import json, sys
print(json.load(sys.stdin)["requests_by_prompt"].get(sys.argv[1], 0))' "$1"
}

# Creates a task, waits until it has finished; leaves its JSON as the last response. $1: prompt.
t20_run() {
    api_create "$1"
    if ! poll_api_status 60 "${TASK_ID}" succeeded failed cancelled; then
        fail "faults: '$1' finishes" "$(last_response)"
    fi
}

t20_prompt="e2e [mock:529x2] overloaded twice"
t20_run "${t20_prompt}"
assert_eq "529 twice: the task succeeds" "succeeded" "$(json status)"
assert_eq "529 twice: 3 attempts" "3" "$(json attempts)"
assert_eq "529 twice: one result, the mock's reply" "Mock reply to: ${t20_prompt}" "$(json result)"
assert_eq "529 twice: the mock saw 3 requests" "3" "$(mock_requests_for "${t20_prompt}")"

t20_prompt="e2e [mock:429x1] rate limited once"
t20_run "${t20_prompt}"
assert_eq "429 once: the task succeeds" "succeeded" "$(json status)"
assert_eq "429 once: 2 attempts" "2" "$(json attempts)"
# The mock sends retry-after: 1; the retry must not come sooner (a lower bound on a deliberate wait).
t20_elapsed="$(python3 - "$(json started_at)" "$(json finished_at)" <<'PY'
import sys
from datetime import datetime
a, b = (datetime.fromisoformat(s.replace("Z", "+00:00")) for s in sys.argv[1:3])
print("yes" if (b - a).total_seconds() >= 1.0 else "no: %.3f s" % (b - a).total_seconds())
PY
)"
assert_eq "429 once: the retry waited retry-after (1 s)" "yes" "${t20_elapsed}"

t20_prompt="e2e [mock:401] bad key"
t20_run "${t20_prompt}"
assert_eq "401: failed" "failed" "$(json status)"
assert_eq "401: authentication_error" "authentication_error" "$(json error.type)"
assert_eq "401: one attempt" "1" "$(json error.attempts)"
assert_eq "401: the mock saw 1 request" "1" "$(mock_requests_for "${t20_prompt}")"

t20_prompt="e2e [mock:500] always failing"
t20_run "${t20_prompt}"
assert_eq "500: failed after retries" "failed" "$(json status)"
assert_eq "500: api_error" "api_error" "$(json error.type)"
assert_eq "500: 3 attempts (2 retries)" "3" "$(json error.attempts)"

t20_prompt="e2e [mock:disconnect] cut off [mock:long=20]"
t20_run "${t20_prompt}"
assert_eq "disconnect mid-stream: failed" "failed" "$(json status)"
assert_eq "disconnect mid-stream: connection_error" "connection_error" "$(json error.type)"
assert_eq "disconnect mid-stream: not retried once text was delivered" "1" "$(json error.attempts)"
check "disconnect mid-stream: the partial text is kept" "no partial result" test -n "$(json result)"

t20_prompt="e2e [mock:malformed] garbage [mock:long=20]"
t20_run "${t20_prompt}"
assert_eq "malformed JSON: failed" "failed" "$(json status)"
assert_eq "malformed JSON: invalid_response" "invalid_response" "$(json error.type)"

t20_prompt="e2e [mock:error-event] overloaded mid-stream [mock:long=20]"
t20_run "${t20_prompt}"
assert_eq "error event after text: failed" "failed" "$(json status)"
assert_eq "error event after text: overloaded_error" "overloaded_error" "$(json error.type)"
assert_eq "error event after text: not retried" "1" "$(json error.attempts)"
check "error event after text: the upstream request id is kept" "no request id" test -n "$(json error.request_id)"

t20_prompt="e2e [mock:error-event-earlyx1] overloaded before any text"
t20_run "${t20_prompt}"
assert_eq "error event before text: retried and succeeded" "succeeded" "$(json status)"
assert_eq "error event before text: 2 attempts" "2" "$(json attempts)"

t20_prompt="e2e [mock:max-tokens] truncated"
t20_run "${t20_prompt}"
assert_eq "max_tokens: succeeded" "succeeded" "$(json status)"
assert_eq "max_tokens: stop_reason" "max_tokens" "$(json stop_reason)"
check "max_tokens: usage is kept" "no usage" test -n "$(json usage.output_tokens)"
http GET "/check?task_id=${TASK_ID}" -H 'HX-Request: true'
assert_body_contains "max_tokens: the page says the answer was cut short" 'max_tokens'

# Keep-alive: sequential tasks reuse the upstream connection.
t20_stats_before="$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats")"
for t20_i in 1 2 3 4; do t20_run "e2e keep-alive ${t20_i}"; done
t20_stats_after="$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats")"
t20_reuse="$(python3 - "${t20_stats_before}" "${t20_stats_after}" <<'PY'
import json, sys
a, b = (json.loads(s) for s in sys.argv[1:3])
requests = b["requests_total"] - a["requests_total"]
connections = b["connections_total"] - a["connections_total"]
print("yes" if requests == 4 and connections < requests else f"no: {requests} requests over {connections} new connections")
PY
)"
assert_eq "keep-alive: 4 sequential calls need fewer than 4 new connections" "yes" "${t20_reuse}"

# Silence: slow headers beyond the idle timeout end as idle_timeout, not as a task stuck forever.
restart_backend "timeouts: backend restarts with --idle-timeout 1 --max-retries 0" --idle-timeout 1 --max-retries 0
t20_run "e2e [mock:slow-headers=4] silent server"
assert_eq "slow headers: failed" "failed" "$(json status)"
assert_eq "slow headers: idle_timeout" "idle_timeout" "$(json error.type)"
t20_run "e2e [mock:stall=4] stalls mid-stream [mock:long=5]"
assert_eq "stall mid-stream: failed" "failed" "$(json status)"
assert_eq "stall mid-stream: idle_timeout" "idle_timeout" "$(json error.type)"

# Connect timeout: a listener whose accept queue is full drops new SYNs, so the handshake never completes.
python3 - "${E2E_DIR}/blackhole.port" <<'PY' 2>>"${E2E_DIR}/e2e.log" &
import socket, sys, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(0)
port = listener.getsockname()[1]
fillers = []
for _ in range(3):
    filler = socket.socket()
    filler.setblocking(False)
    try:
        filler.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fillers.append(filler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(port))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
PY
t20_blackhole=$!
if wait_until 10 test -s "${E2E_DIR}/blackhole.port"; then
    restart_backend "timeouts: backend restarts against an API that never accepts" --connect-timeout 1 --max-retries 1 \
        --base-url "http://127.0.0.1:$(cat "${E2E_DIR}/blackhole.port")"
    t20_run "e2e unreachable API"
    assert_eq "connect timeout: failed" "failed" "$(json status)"
    assert_eq "connect timeout: connect_timeout" "connect_timeout" "$(json error.type)"
    assert_eq "connect timeout: retried once" "2" "$(json error.attempts)"
else
    fail "connect timeout: the blackhole listener starts" "no port file"
fi
kill "${t20_blackhole}" 2>/dev/null || true
wait "${t20_blackhole}" 2>/dev/null || true

# Connection refused: a port nobody listens on.
restart_backend "timeouts: backend restarts against a closed port" --max-retries 0 \
    --base-url "http://127.0.0.1:$(free_port)"
t20_run "e2e refused API"
assert_eq "connection refused: failed" "failed" "$(json status)"
assert_eq "connection refused: connection_error" "connection_error" "$(json error.type)"

# TLS to the upstream is verified: the test nginx's self-signed certificate is refused, unless --ca-file trusts it.
restart_backend "tls: backend restarts against an HTTPS API with an untrusted certificate" --max-retries 0 \
    --base-url "https://localhost:${E2E_PORT}"
t20_run "e2e untrusted TLS"
assert_eq "tls: an untrusted certificate fails the call" "failed" "$(json status)"
assert_eq "tls: as a connection error" "connection_error" "$(json error.type)"
check "tls: the message says why" "$(json error.message)" grep -qi 'certificate' <<<"$(json error.message)"
restart_backend "tls: backend restarts with --ca-file trusting that certificate" --max-retries 0 \
    --base-url "https://localhost:${E2E_PORT}" --ca-file "${E2E_DIR}/cert.pem"
t20_run "e2e trusted TLS"
# nginx (not an LLM API) answers: the handshake succeeded and the HTTP error is the upstream's 404.
assert_eq "tls: with --ca-file the handshake succeeds (the server's own 404 comes back)" "not_found_error" "$(json error.type)"

restart_backend "faults: backend back to defaults"
true
