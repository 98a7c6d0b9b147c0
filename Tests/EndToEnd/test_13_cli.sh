#!/usr/bin/env bash
# shellcheck shell=bash
# The command line: --help lists the settings; standalone mode creates its socket with the given mode and stops
# on SIGINT. Sourced by run.sh.

t12_help="$("${E2E_BIN}" --help 2>&1)"
t12_rc=$?
assert_eq "cli: --help exits 0" "0" "${t12_rc}"
for t12_flag in --socket --socket-mode --threads --base-url --model --max-tokens --max-in-flight --max-queued \
    --result-ttl --max-query-bytes --log-level --env-file ANTHROPIC_API_KEY; do
    check "cli: --help shows ${t12_flag}" "not in --help" grep -qF -- "${t12_flag}" <<<"${t12_help}"
done
refute "cli: --help shows no API key" "the key is in --help" grep -qF -- "${E2E_KEY}" <<<"${t12_help}"

t12_sock="${E2E_DIR}/standalone.sock"
# SIGINT must reach it: a background job of a script starts with SIGINT ignored, unless reset.
(cd "${E2E_DIR}" && exec env --default-signal=INT "${E2E_BIN}" --socket "${t12_sock}" --socket-mode 0660 \
    "${E2E_BACKEND_FLAGS[@]}") >>"${E2E_DIR}/standalone.log" 2>&1 &
t12_pid=$!
if wait_until_alive "${t12_pid}" 30 test -S "${t12_sock}"; then
    pass "cli: standalone --socket creates the socket"
else
    fail "cli: standalone --socket creates the socket" "$(tail -n 3 "${E2E_DIR}/standalone.log")"
fi
assert_eq "cli: --socket-mode 0660 is applied" "660" "$(stat -c '%a' "${t12_sock}" 2>/dev/null || true)"
kill -INT "${t12_pid}" 2>/dev/null || true
if wait_until 20 process_gone "${t12_pid}"; then
    t12_rc=0
    wait "${t12_pid}" || t12_rc=$?
    assert_eq "cli: SIGINT stops the standalone backend with exit code 0" "0" "${t12_rc}"
else
    kill -KILL "${t12_pid}" 2>/dev/null || true
    wait "${t12_pid}" 2>/dev/null || true
    fail "cli: SIGINT stops the standalone backend with exit code 0" "still running 20 s after SIGINT"
fi
check "cli: standalone logs that it stopped" "no 'stopped' in standalone.log" \
    grep -qi 'stopped' "${E2E_DIR}/standalone.log"
assert_file_lacks "cli: no API key in the standalone log" "${E2E_KEY}" "${E2E_DIR}/standalone.log"
true
