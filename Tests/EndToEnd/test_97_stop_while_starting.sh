#!/usr/bin/env bash
# shellcheck shell=bash
# A stop signal at any moment of start-up stops the backend (a service manager stopping a process that is still
# starting must not wait for its kill timeout): SIGTERM after 0 to 400 ms, each time the process gone within 30 s.
# Before the fix, a signal between the socket's creation and the service group's signal handling was ignored and
# the backend served on. Sourced by run.sh.

t97_dir="${E2E_DIR}/stop-while-starting"
mkdir -p "${t97_dir}"
for t97_delay in 0 0.01 0.03 0.06 0.1 0.2 0.4; do
    rm -f "${t97_dir}/b.sock"
    ANTHROPIC_API_KEY="${E2E_KEY}" "${E2E_BIN}" --socket "${t97_dir}/b.sock" >"${t97_dir}/b-${t97_delay}.log" 2>&1 &
    t97_pid=$!
    sleep "${t97_delay}"
    kill -TERM "${t97_pid}" 2>/dev/null || true
    t97_gone=0
    for _ in $(seq 1 300); do
        if ! kill -0 "${t97_pid}" 2>/dev/null; then
            t97_gone=1
            break
        fi
        sleep 0.1
    done
    if [[ "${t97_gone}" == 1 ]]; then
        pass "stop while starting: SIGTERM after ${t97_delay} s stops the backend"
    else
        fail "stop while starting: SIGTERM after ${t97_delay} s stops the backend" \
            "still running after 30 s: $(tail -n 3 "${t97_dir}/b-${t97_delay}.log")"
        kill -KILL "${t97_pid}" 2>/dev/null || true
    fi
    wait "${t97_pid}" 2>/dev/null || true
done
true
