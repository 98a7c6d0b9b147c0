#!/usr/bin/env bash
# shellcheck shell=bash
# Server-sent events pass through nginx unbuffered: the first delta reaches the client while the task still runs,
# and the stream ends with a done event. Sourced by run.sh.

api_create "e2e stream [mock:latency=8]"
t11_id="${TASK_ID}"
t11_out="${E2E_DIR}/stream.out"
t11_headers="${E2E_DIR}/stream.headers"
curl -sS -N --max-time 40 --cacert "${E2E_DIR}/cert.pem" -D "${t11_headers}" -o "${t11_out}" \
    "https://localhost:${E2E_PORT}/api/tasks/${t11_id}/events" 2>>"${E2E_DIR}/e2e.log" &
t11_curl=$!
if wait_until_alive "${t11_curl}" 30 grep -q '^event: delta' "${t11_out}"; then
    pass "stream: a delta event arrives"
    http GET "/api/tasks/${t11_id}"
    assert_eq "stream: the first delta arrives while the task still runs (unbuffered)" "running" "$(json status)"
else
    fail "stream: a delta event arrives" "got: $(head -c 300 "${t11_out}" 2>/dev/null | tr '\n' ' ')"
fi
if wait_until 40 process_gone "${t11_curl}"; then
    wait "${t11_curl}" 2>/dev/null || true
else
    kill "${t11_curl}" 2>/dev/null || true
    wait "${t11_curl}" 2>/dev/null || true
fi
check "stream: text/event-stream" "headers: $(tr -d '\r' <"${t11_headers}" 2>/dev/null | tr '\n' ' ')" \
    grep -qi '^content-type: text/event-stream' "${t11_headers}"
check "stream: ends with a done event" "got: $(tail -c 300 "${t11_out}" 2>/dev/null | tr '\n' ' ')" \
    grep -q '^event: done' "${t11_out}"
cat "${t11_out}" >>"${E2E_DIR}/responses.log" 2>/dev/null || true
true
