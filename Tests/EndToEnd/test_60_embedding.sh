#!/usr/bin/env bash
# shellcheck shell=bash
# Embedding (issue 10): Examples/ReportDemo, a separate package that depends on Longhaul by path, serves its own
# page and a non-LLM slow job with progress through Longhaul's server, task table, polling, JSON API and cancel;
# and the LLM demo mounted under a path prefix (/tools/ask) through nginx. Sourced by run.sh.

t60_pkg="${LONGHAUL_ROOT}/Examples/ReportDemo"
if swift build --package-path "${t60_pkg}" >>"${E2E_DIR}/example-build.log" 2>&1; then
    pass "example: Examples/ReportDemo builds against Longhaul"
else
    fail "example: Examples/ReportDemo builds against Longhaul" "$(tail -n 5 "${E2E_DIR}/example-build.log")"
fi
t60_bin="$(swift build --package-path "${t60_pkg}" --show-bin-path 2>/dev/null)/ReportDemo"

stop_backend "${E2E_DIR}" 20 || true
if REPORT_SECONDS=3 BACKEND_NAME=example start_backend "${E2E_DIR}" "${E2E_DIR}/example.sock" "${t60_bin}" \
    2>>"${E2E_DIR}/e2e.log"; then
    pass "example: starts under spawn-fcgi"
else
    fail "example: starts under spawn-fcgi" "$(tail -n 3 "${E2E_DIR}/example.log" 2>/dev/null)"
fi
if ! { render_nginx "${E2E_DIR}" "${E2E_PORT}" "${E2E_DIR}/example.sock" 2>>"${E2E_DIR}/e2e.log" &&
    reload_nginx "${E2E_DIR}"; }; then
    fail "example: nginx switches to the example's socket" "$(tail -n 3 "${E2E_DIR}/error.log")"
fi

http GET /
assert_status "example: its own page" 200
assert_body_contains "example: its own form" 'hx-post="/reports"'
http POST /reports -H 'HX-Request: true' --data-urlencode 'title=Quarterly sales'
assert_status "example: its own route starts a report" 200
t60_id="$(task_id_in "${HTTP_BODY}")"
assert_body_contains "example: the shared polling fragment" 'hx-trigger="sse:done'
t60_saw_progress=0
t60_deadline=$((SECONDS + 30))
while ((SECONDS < t60_deadline)); do
    http GET "/api/tasks/${t60_id}"
    t60_progress="$(json progress)"
    if [[ "$(json status)" == running && -n "${t60_progress}" ]] &&
        python3 -c 'import sys; sys.exit(0 if 0 < float(sys.argv[1]) < 1 else 1)' "${t60_progress}"; then
        t60_saw_progress=1
    fi
    [[ "$(json status)" == succeeded ]] && break
    sleep 0.3
done
assert_eq "example: progress is reported through the shared JSON API" "1" "${t60_saw_progress}"
assert_eq "example: the report completes" "succeeded" "$(json status)"
# The report's title is between typographic quotes (U+201C, U+201D).
assert_eq "example: with its result" $'Report \u201cQuarterly sales\u201d: 20 sections compiled.' "$(json result | head -n 1)"
assert_eq "example: progress ends at 1" "1.0" "$(json progress)"
http GET "/check?task_id=${t60_id}" -H 'HX-Request: true'
assert_body_contains "example: the shared check route shows it" '<h2>Result</h2>'
http POST /reports -H 'HX-Request: true' --data-urlencode 'title=Cancel me'
t60_cancel="$(task_id_in "${HTTP_BODY}")"
http DELETE "/api/tasks/${t60_cancel}"
check "example: the shared cancel works on its job" "$(last_response)" test "$(json cancel)" = requested -o "$(json cancel)" = cancelled
http POST /generate -H 'HX-Request: true' --data-urlencode 'query=x'
assert_status "example: no LLM routes unless it adds them" 404
BACKEND_NAME=example stop_backend "${E2E_DIR}" 20 || true

# The LLM demo under a prefix, as in an existing site: every link and htmx attribute carries it.
restart_backend "prefix: backend restarts with --base-path /tools/ask" --base-path /tools/ask
if ! { render_nginx "${E2E_DIR}" "${E2E_PORT}" "${E2E_SOCKET}" 2>>"${E2E_DIR}/e2e.log" && reload_nginx "${E2E_DIR}"; }; then
    fail "prefix: nginx back to the main socket" "$(tail -n 3 "${E2E_DIR}/error.log")"
fi
http GET /tools/ask/
assert_status "prefix: the page under /tools/ask/" 200
assert_body_contains "prefix: the form posts under the prefix" 'hx-post="/tools/ask/generate"'
assert_body_contains "prefix: static links under the prefix" 'href="/tools/ask/static/app.css"'
assert_body_lacks "prefix: no link outside it" 'href="/static/'
http POST /tools/ask/generate -H 'HX-Request: true' --data-urlencode 'query=e2e prefixed'
assert_body_contains "prefix: polling under the prefix" 'hx-get="/tools/ask/check?task_id='
assert_body_contains "prefix: streaming under the prefix" 'sse-connect="/tools/ask/stream?task_id='
t60_prefixed="$(task_id_in "${HTTP_BODY}")"
if poll_body 30 '<h2>Result</h2>' GET "/tools/ask/check?task_id=${t60_prefixed}" -H 'HX-Request: true'; then
    pass "prefix: the result through the prefixed check"
else
    fail "prefix: the result through the prefixed check" "$(last_response)"
fi
assert_body_contains "prefix: the mock's reply" 'Mock reply to: e2e prefixed'
http POST /tools/ask/generate --data-urlencode 'query=e2e prefixed plain'
assert_header_match "prefix: the no-JavaScript redirect stays under the prefix" Location '^/tools/ask/task\?task_id='
restart_backend "prefix: backend back to defaults"
true
