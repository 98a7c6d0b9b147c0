#!/usr/bin/env bash
# shellcheck shell=bash
# The page in a real browser (headless Chromium through nginx over TLS): the form, the empty-query message,
# text streaming in over server-sent events with no polling while the stream is open, model markup shown as text,
# the Cancel button, and no console or CSP errors. Sourced by run.sh.

backend_alive || restart_backend "browser: backend running"
t40_out="$(python3 "${LONGHAUL_ROOT}/Tests/Browser/page_check.py" "https://localhost:${E2E_PORT}" "${E2E_DIR}/cert.pem" 2>&1)" ||
    true
printf '%s\n' "${t40_out}" >>"${E2E_DIR}/responses.log"
t40() { sed -n "s/^$1=//p" <<<"${t40_out}" | head -n 1; }

assert_eq "browser: the page drives without error" "" "$(t40 error)"
assert_eq "browser: the title" "Long running" "$(t40 title)"
assert_eq "browser: an empty query shows 'No query provided'" "No query provided" "$(t40 empty_message)"
assert_eq "browser: the form resets once the task is accepted" "True" "$(t40 form_reset)"
assert_eq "browser: the text grows while the task runs (streamed)" "True" "$(t40 partial_grows)"
assert_eq "browser: the final result" "Mock reply to: browser stream [mock:latency=5] [mock:long=40] $(printf 'word%s ' $(seq 1 40) | sed 's/ $//')" \
    "$(t40 result)"
assert_eq "browser: one stream for the task" "1" "$(t40 stream_requests)"
assert_eq "browser: no polling while the stream is open (one check, after done)" "1" "$(t40 check_requests)"
assert_eq "browser: model markup is shown as text" "True" "$(t40 html_as_text)"
assert_eq "browser: and creates no element" "0" "$(t40 injected_elements)"
assert_eq "browser: Cancel ends the task" "True" "$(t40 cancelled)"
assert_eq "browser: no console or CSP errors" "0" "$(t40 errors)"
true
