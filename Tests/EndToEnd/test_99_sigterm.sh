#!/usr/bin/env bash
# shellcheck shell=bash
# SIGTERM stops the backend: exit code 0, "stopped" in its log, the process gone; nginx still serves static
# files and answers the rest with its "temporarily unavailable" page (503; htmx polls keep a 502, not swapped). Numbered 99 to run last: it leaves no backend. Sourced by run.sh.

t13_offset="$(wc -c <"${E2E_DIR}/backend.log")"
t13_pid="$(saved_pid "${E2E_DIR}" backend)"
if [[ -z "${t13_pid}" ]] || ! pid_alive "${t13_pid}"; then
    fail "sigterm: a backend is running" "none is"
else
    if stop_backend "${E2E_DIR}" 20; then
        pass "sigterm: the backend stops within 20 s"
    else
        fail "sigterm: the backend stops within 20 s" "it had to be killed"
    fi
    assert_eq "sigterm: exit code 0" "0" "${STOPPED_EXIT_CODE}"
    t13_log="$(tail -c +"$((t13_offset + 1))" "${E2E_DIR}/backend.log")"
    check "sigterm: the log says stopped" "no 'stopped' after the SIGTERM" grep -qi stopped <<<"${t13_log}"
    check "sigterm: the process is gone" "pid ${t13_pid} still runs" process_gone "${t13_pid}"
    http GET /
    assert_status "sigterm: nothing serves the socket: nginx's friendly 503" 503
    assert_body_contains "sigterm: the page says it is temporarily unavailable and retries" 'temporarily unavailable'
    http GET "/check?task_id=AAAAAAAAAAAAAAAAAAAAAA" -H 'HX-Request: true'
    assert_status "sigterm: an htmx poll gets 502 (not swapped: the page polls again)" 502
    http GET "/api/tasks/AAAAAAAAAAAAAAAAAAAAAA"
    assert_json_error "sigterm: the API gets JSON 503" 503 backend_unavailable
    http GET /static/app.css
    assert_status "sigterm: nginx still serves static files" 200
fi
true
