#!/usr/bin/env bash
# shellcheck shell=bash
# Bad input through nginx (issue 8), one table row per case and entry point. Every row checks the status, a clear
# message (a JSON error {"error":{"type","message"}} under /api/, an HTML fragment for htmx, a whole page otherwise,
# nginx's own page for what never reaches the backend), the security headers, and afterwards that the backend still
# serves (same pid, /ping) and that the sentinel tasks (one finished, one still running) are intact.
# Then the same with a small --max-query-bytes and --result-ttl (the configurable limit, expired ids), and the
# backend gets the suite's flags back. Sourced by run.sh.
#
# Decisions where the issue is silent: a repeated parameter takes its first value (forms and query strings; a JSON
# object with a repeated key takes the last, as the JSON parser does); unknown form fields, query parameters and
# headers are ignored, unknown JSON fields are refused (400); a task id in the path that is not UTF-8 is simply
# unknown (404) while one in the query string is an undecodable query string (400); raw bytes that are not UTF-8
# in a query string reach the app as U+FFFD (lossy FastCGI parameters), so such an id is unknown (404); a URL or
# header over nginx's buffers is nginx's answer: 414 / 400 over HTTP/1.1, a refused stream over HTTP/2 (nginx sends
# no status there).

T15_DONE_QUERY="e2e bad input sentinel done"
# The running sentinel must outlast the file on a loaded machine (CI runs it beside the sanitizer builds: 120 s was
# once not enough); it is cancelled where it is no longer needed.
T15_RUN_QUERY="e2e running [mock:latency=1800] [mock:long=200]"
t15_done=""
t15_run=""
t15_pid=""
# The task a row created (its id from the JSON, the Location or the fragment), for the rows' extra checks.
t15_id=""

# Like http(), but waits out nginx's per-client rate limit on /generate and /api/tasks (429, 10/s, burst 20, every
# method counts), which this table would otherwise hit: what it tests is the answer to the request, not the rate
# limit (test_50 does that). A token comes back every 0.1 s.
t15_http() {
    local attempt
    for attempt in $(seq 1 30); do
        http "$@"
        [[ "${HTTP_STATUS}" == 429 ]] || return 0
        [[ ${attempt} -lt 30 ]] && sleep 0.1
    done
}

# Prints the last answer's error.type and error.message separated by a tab (nothing when it is not of that shape).
t15_json_error() {
    python3 - "${E2E_DIR}/last.body" <<'PY' 2>/dev/null || true
import json, sys
try:
    error = json.load(open(sys.argv[1], encoding="utf-8"))["error"]
    if isinstance(error.get("type"), str) and isinstance(error.get("message"), str):
        print(error["type"] + "\t" + error["message"])
except Exception:
    pass
PY
}

# Checks that the backend still serves and that no task was lost: the same process, /ping, the finished sentinel
# with its result, the running sentinel still running. One curl for all three. Prints the problems (nothing when
# all is well).
t15_intact_problems() {
    local urls=() codes
    if [[ "$(saved_pid "${E2E_DIR}" backend)" != "${t15_pid}" ]] || ! backend_alive; then
        printf 'the backend died or was replaced; '
    fi
    urls+=(-o "${E2E_DIR}/t15.ping" "https://localhost:${E2E_PORT}/ping")
    [[ -n "${t15_done}" ]] && urls+=(-o "${E2E_DIR}/t15.done" "https://localhost:${E2E_PORT}/api/tasks/${t15_done}")
    [[ -n "${t15_run}" ]] && urls+=(-o "${E2E_DIR}/t15.run" "https://localhost:${E2E_PORT}/api/tasks/${t15_run}")
    rm -f "${E2E_DIR}/t15.ping" "${E2E_DIR}/t15.done" "${E2E_DIR}/t15.run"
    codes="$(curl -sS --max-time 10 --cacert "${E2E_DIR}/cert.pem" -w '%{http_code} ' "${urls[@]}" 2>&1)" || true
    [[ "$(cat "${E2E_DIR}/t15.ping" 2>/dev/null)" == "pong" ]] || printf '/ping does not answer pong (%s); ' "${codes}"
    if [[ -n "${t15_done}" ]]; then
        local done_json
        done_json="$(cat "${E2E_DIR}/t15.done" 2>/dev/null)"
        [[ "${done_json}" == *"\"status\":\"succeeded\""* &&
            "${done_json}" == *"\"query\":\"${T15_DONE_QUERY}\""* &&
            "${done_json}" == *"\"result\":\"Mock reply to: ${T15_DONE_QUERY}\""* ]] ||
            printf 'the finished sentinel changed: %s; ' "${done_json:0:160}"
    fi
    if [[ -n "${t15_run}" ]]; then
        local run_json
        run_json="$(cat "${E2E_DIR}/t15.run" 2>/dev/null)"
        [[ "${run_json}" == *"\"status\":\"running\""* && "${run_json}" == *"\"query\":\"${T15_RUN_QUERY}\""* ]] ||
            printf 'the running sentinel changed: %s; ' "${run_json:0:160}"
    fi
}

# Records the "afterwards" check of a row. $1: the row's name.
t15_after() {
    local problems
    problems="$(t15_intact_problems)"
    if [[ -z "${problems}" ]]; then
        pass "$1: the backend still serves, no task lost"
    else
        fail "$1: the backend still serves, no task lost" "${problems}"
    fi
}

# One row of the table: sends the request and checks the answer, then t15_after.
# $1: name. $2: kind of answer: json (a JSON error under /api/, or JSON on success), htmx (an HTML fragment; the row
# sends HX-Request: true), page (a whole HTML page on errors), text (any body), nginx (nginx's own page: a 4xx with a
# body), refused (nginx refuses: its 4xx, or over HTTP/2 no status at all). $3: the expected status (an extended
# regex: 400, 41[34]). $4: a regex the message must match (the error message for JSON errors, else the body).
# $5: method. $6: path. $@ (rest): more curl arguments.
t15_row() {
    local name="bad input: $1" kind="$2" status="$3" regex="$4" method="$5" path="$6" why=() ctype message type
    shift 6
    local args=("$@")
    [[ "${kind}" == htmx ]] && args+=(-H 'HX-Request: true')
    t15_http "${method}" "${path}" "${args[@]}"
    ctype="$(header Content-Type)"
    [[ "${HTTP_STATUS}" =~ ^(${status})$ ]] || why+=("HTTP ${HTTP_STATUS}, expected ${status}")
    case "${kind}" in
        json)
            [[ "${ctype}" == application/json* ]] || why+=("Content-Type '${ctype}' is not JSON")
            if [[ "${HTTP_STATUS}" =~ ^[45] ]]; then
                message="$(t15_json_error)"
                type="${message%%$'\t'*}"
                message="${message#*$'\t'}"
                [[ -n "${type}" && -n "${message}" ]] || why+=("no {\"error\":{\"type\",\"message\"}}")
                [[ "${message}" =~ ${regex} ]] || why+=("message '${message:0:200}' does not match /${regex}/")
            else
                [[ "${HTTP_BODY}" =~ ${regex} ]] || why+=("body does not match /${regex}/")
            fi
            ;;
        htmx | page)
            [[ "${ctype}" == text/html* || "${HTTP_STATUS}" =~ ^3 ]] || why+=("Content-Type '${ctype}' is not HTML")
            [[ "${HTTP_BODY}" =~ ${regex} ]] || why+=("body does not match /${regex}/")
            if [[ "${HTTP_STATUS}" =~ ^[45] ]]; then
                [[ "${HTTP_BODY}" != *hx-trigger* ]] || why+=("an error answer that polls (hx-trigger)")
                if [[ "${kind}" == htmx ]]; then
                    [[ "${HTTP_BODY}" != *"<html"* ]] || why+=("a whole page instead of a fragment")
                else
                    [[ "${HTTP_BODY}" == *"<title>Long running</title>"* ]] || why+=("not the app's page")
                fi
            fi
            ;;
        text | nginx)
            [[ -n "${HTTP_BODY}" ]] || why+=("empty body")
            [[ "${HTTP_BODY}" =~ ${regex} ]] || why+=("body does not match /${regex}/")
            ;;
        refused) ;;
        *) why+=("unknown row kind ${kind}") ;;
    esac
    if [[ "${HTTP_STATUS}" != 000 ]]; then
        [[ "$(header X-Content-Type-Options)" == nosniff ]] || why+=("no X-Content-Type-Options: nosniff")
        [[ "$(header Content-Security-Policy)" == *"default-src 'self'"* ]] || why+=("no Content-Security-Policy")
    fi
    if [[ "${HTTP_STATUS}" == 405 ]]; then
        local allow
        allow="$(header Allow)"
        [[ -n "${allow}" && "${allow}" != *"${method}"* ]] || why+=("Allow '${allow}' (method ${method})")
        [[ "${HTTP_BODY}" == *"${allow}"* ]] || why+=("the message does not name the allowed methods")
    fi
    if [[ ${#why[@]} -eq 0 ]]; then
        pass "${name}"
    else
        local IFS=';'
        fail "${name}" "${why[*]}; $(last_response)"
    fi
    t15_id=""
    if [[ "${HTTP_STATUS}" =~ ^[23] ]]; then
        t15_id="$(json id)"
        [[ -n "${t15_id}" ]] || t15_id="$(task_id_in "$(header Location) ${HTTP_BODY}")"
    fi
    t15_after "${name}"
}

# A HEAD row: the same status and headers as GET, and not one byte after the header block (raw HTTP/1.1, so that
# nothing drops a body on the way). $1: name. $2: path. $3: expected status. $4: Content-Type prefix. $5 (optional):
# "noget" when the GET would not end by itself (not used for running tasks' streams) or has no GET.
t15_head() {
    local name="bad input: HEAD $1" path="$2" status="$3" ctype_prefix="$4" why=() get_status ctype
    if [[ "${5:-}" != noget ]]; then
        t15_http GET "${path}"
        get_status="${HTTP_STATUS}"
        [[ "${get_status}" == "${status}" ]] || why+=("GET answered ${get_status}, expected ${status}")
    fi
    raw_http HEAD "${path}"
    ctype="$(header Content-Type)"
    [[ "${HTTP_STATUS}" == "${status}" ]] || why+=("HEAD answered ${HTTP_STATUS}, expected ${status}")
    [[ "${RAW_BODY_BYTES}" == 0 ]] || why+=("${RAW_BODY_BYTES} body bytes after the headers")
    [[ "${ctype}" == "${ctype_prefix}"* ]] || why+=("Content-Type '${ctype}', expected ${ctype_prefix}")
    [[ "$(header X-Content-Type-Options)" == nosniff ]] || why+=("no X-Content-Type-Options: nosniff")
    [[ "$(header Content-Security-Policy)" == *"default-src 'self'"* ]] || why+=("no Content-Security-Policy")
    if [[ "${status}" == 405 ]]; then
        [[ -n "$(header Allow)" ]] || why+=("405 without Allow")
    fi
    if [[ ${#why[@]} -eq 0 ]]; then
        pass "${name}"
    else
        local IFS=';'
        fail "${name}" "${why[*]}"
    fi
    t15_after "${name}"
}

# Starts a task whose query holds control characters and right-to-left marks, then checks it is stored and shown
# faithfully: the API returns the exact query and the mock's exact echo (JSON-escaped), the fragment and the task
# page show it HTML-escaped (no raw markup). $1: name. $2: entry point (api, htmx or plain). $3: the query as a
# Python string literal (escapes such as \x01 and \u202e).
t15_faithful() {
    local name="bad input: $1" entry="$2" literal="$3" body_file="${E2E_DIR}/t15.faithful" problems
    python3 - "${entry}" "${literal}" "${body_file}" <<'PY'
import ast, json, sys, urllib.parse
entry, literal, out = sys.argv[1], sys.argv[2], sys.argv[3]
query = ast.literal_eval(literal)
if entry == "api":
    data = json.dumps({"query": query}).encode()
else:
    data = urllib.parse.urlencode({"query": query}).encode()
open(out, "wb").write(data)
PY
    case "${entry}" in
        api) t15_http POST /api/tasks -H 'Content-Type: application/json' --data-binary "@${body_file}" ;;
        htmx) t15_http POST /generate -H 'HX-Request: true' --data-binary "@${body_file}" ;;
        plain) t15_http POST /generate --data-binary "@${body_file}" ;;
    esac
    t15_id="$(json id)"
    [[ -n "${t15_id}" ]] || t15_id="$(task_id_in "$(header Location) ${HTTP_BODY}")"
    assert_status "${name}: accepted" 200 202 303
    if [[ -z "${t15_id}" ]] || ! poll_api_status 30 "${t15_id}" succeeded failed; then
        fail "${name}: the task finishes" "$(last_response)"
        return 0
    fi
    cp "${E2E_DIR}/last.body" "${E2E_DIR}/t15.api"
    http GET "/check?task_id=${t15_id}" -H 'HX-Request: true'
    cp "${E2E_DIR}/last.body" "${E2E_DIR}/t15.check"
    http GET "/task?task_id=${t15_id}"
    cp "${E2E_DIR}/last.body" "${E2E_DIR}/t15.page"
    problems="$(python3 - "${literal}" "${E2E_DIR}/t15.api" "${E2E_DIR}/t15.check" "${E2E_DIR}/t15.page" <<'PY'
import ast, html, json, sys
query = ast.literal_eval(sys.argv[1])
api = json.load(open(sys.argv[2], encoding="utf-8"))
problems = []
if api.get("status") != "succeeded":
    problems.append(f"status {api.get('status')}")
if api.get("query") != query:
    problems.append(f"API query {api.get('query')!r} != {query!r}")
if api.get("result") != "Mock reply to: " + query:
    problems.append(f"API result {api.get('result')!r} is not the mock's echo")
escaped = query.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
for label, file in (("fragment", sys.argv[3]), ("task page", sys.argv[4])):
    text = open(file, "rb").read().decode("utf-8", "replace")
    if escaped not in text:
        problems.append(f"the {label} lacks the escaped query {escaped!r}")
    if "Mock reply to: " + escaped not in text:
        problems.append(f"the {label} lacks the escaped result")
    if "<" in query and query in text:
        problems.append(f"the {label} shows the query's markup raw")
print("; ".join(problems))
PY
)"
    if [[ -z "${problems}" ]]; then
        pass "${name}: stored, returned and shown faithfully, escaped"
    else
        fail "${name}: stored, returned and shown faithfully, escaped" "${problems}"
    fi
    t15_after "${name}"
}

# --- Sentinels -------------------------------------------------------------------------------------------------------

# Starts the running sentinel (a slow reply) and sets t15_run. $1: added to the check's name.
t15_start_running_sentinel() {
    api_create "${T15_RUN_QUERY}"
    t15_run="${TASK_ID}"
    if [[ -n "${t15_run}" ]] && poll_api_status 30 "${t15_run}" running; then
        pass "bad input: the running sentinel task runs$1"
    else
        fail "bad input: the running sentinel task runs$1" "$(last_response)"
    fi
}


t15_pid="$(saved_pid "${E2E_DIR}" backend)"
api_create "${T15_DONE_QUERY}"
t15_done="${TASK_ID}"
if [[ -n "${t15_done}" ]] && poll_api_status 30 "${t15_done}" succeeded; then
    pass "bad input: the finished sentinel task succeeds"
else
    fail "bad input: the finished sentinel task succeeds" "$(last_response)"
fi
t15_start_running_sentinel ""

t15_D="${t15_done}"
t15_unknown="$(random_task_id)"
t15_truncated="${t15_D:0:19}"
t15_overlong="${t15_D}A"
t15_json=(-H 'Content-Type: application/json')
t15_form=(-H 'Content-Type: application/x-www-form-urlencoded')
t15_big_query="$(head -c 32769 /dev/zero | tr '\0' 'a')"
t15_max_query="${t15_big_query:1}"
t15_6k="$(head -c 6000 /dev/zero | tr '\0' 'p')"
t15_20k="$(head -c 20000 /dev/zero | tr '\0' 'p')"
t15_pairs_5000="$(printf 'a=1&%.0s' $(seq 1 5000))"
t15_pairs_1500="$(printf 'a=1&%.0s' $(seq 1 1500))"
t15_fields_5000="$(seq 1 5000 | sed 's/.*/"f&":1/' | paste -sd, -)"
head -c 1100000 /dev/zero | tr '\0' 'a' >"${E2E_DIR}/t15.huge"
t15_missing='No query provided'
t15_unknown_task='Unknown or expired task'
t15_not_utf8='not UTF-8'
t15_bad_percent='two hexadecimal digits'

# --- Missing, empty, blank and oversize queries -----------------------------------------------------------------------

for t15_kind in htmx page; do
    t15_row "generate (${t15_kind}), no body" "${t15_kind}" 400 "${t15_missing}" POST /generate --data-binary ''
    t15_row "generate (${t15_kind}), missing query field" "${t15_kind}" 400 "${t15_missing}" POST /generate --data 'other=1'
    t15_row "generate (${t15_kind}), empty query" "${t15_kind}" 400 "${t15_missing}" POST /generate --data 'query='
    t15_row "generate (${t15_kind}), blank query (spaces, tab, newline)" "${t15_kind}" 400 "${t15_missing}" \
        POST /generate --data 'query=+%20%09%0A%0D'
    t15_row "generate (${t15_kind}), query of Unicode spaces" "${t15_kind}" 400 "${t15_missing}" \
        POST /generate --data 'query=%C2%A0%E2%80%83%E3%80%80'
    t15_row "generate (${t15_kind}), query over 32 KiB" "${t15_kind}" 413 'at most 32768 bytes' \
        POST /generate --data "query=${t15_big_query}"
    t15_row "generate (${t15_kind}), body over nginx's 1 MB" "${t15_kind}" 413 'too large' \
        POST /generate "${t15_form[@]}" --data-binary "@${E2E_DIR}/t15.huge"
done
t15_row "generate (htmx), a query of exactly 32 KiB is accepted" htmx 200 'task-pending' \
    POST /generate --data "query=${t15_max_query}"
t15_row "api, empty object" json 400 "${t15_missing}" POST /api/tasks "${t15_json[@]}" --data-binary '{}'
t15_row "api, empty query" json 400 "${t15_missing}" POST /api/tasks "${t15_json[@]}" --data-binary '{"query":""}'
t15_row "api, blank query" json 400 "${t15_missing}" POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"query":" \t\n\r\u00a0\u3000"}'
t15_row "api, query over 32 KiB" json 413 'at most 32768 bytes' POST /api/tasks "${t15_json[@]}" \
    --data-binary "{\"query\":\"${t15_big_query}\"}"
t15_row "api, a query of exactly 32 KiB is accepted" json 202 '"status":"(queued|running)"' POST /api/tasks \
    "${t15_json[@]}" --data-binary "{\"query\":\"${t15_max_query}\"}"
t15_row "api, body over nginx's 1 MB" json 413 'too large' POST /api/tasks "${t15_json[@]}" \
    --data-binary "@${E2E_DIR}/t15.huge"

# --- Not UTF-8 ----------------------------------------------------------------------------------------------------------

for t15_kind in htmx page; do
    t15_row "generate (${t15_kind}), raw bytes not UTF-8 in the form" "${t15_kind}" 400 "${t15_not_utf8}" \
        POST /generate --data-binary "$(printf 'query=caf\xe9 \xff\xfe')"
    t15_row "generate (${t15_kind}), %-encoded bytes not UTF-8" "${t15_kind}" 400 "${t15_not_utf8}" \
        POST /generate --data-binary 'query=caf%E9'
    t15_row "generate (${t15_kind}), a field name not UTF-8" "${t15_kind}" 400 "${t15_not_utf8}" \
        POST /generate --data-binary 'x%FF=1&query=hello'
done
t15_row "api, raw bytes not UTF-8 in the JSON" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary "$(printf '{"query":"caf\xe9 \xff"}')"
t15_row "api, a lone surrogate escape" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"query":"\ud800"}'
t15_row "api, a JSON body in UTF-16" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary "$(printf '\xff\xfe{\x00}\x00')"
t15_row "check (htmx), task_id %-encoded not UTF-8" htmx 400 "${t15_not_utf8}" GET "/check?task_id=%FF${t15_D:1}"
t15_row "task page, task_id %-encoded not UTF-8" page 400 "${t15_not_utf8}" GET "/task?task_id=%FF${t15_D:1}"
t15_row "stream, task_id %-encoded not UTF-8" page 400 "${t15_not_utf8}" GET "/stream?task_id=%FF${t15_D:1}"
t15_row "cancel (htmx), task_id %-encoded not UTF-8" htmx 400 "${t15_not_utf8}" POST "/cancel?task_id=%FF${t15_D:1}"
t15_row "check (htmx), raw bytes not UTF-8 in the query string" htmx 404 "${t15_unknown_task}" \
    GET "$(printf '/check?task_id=\xff\xfe%s' "${t15_D:2}")"
t15_row "api get, task id %-encoded not UTF-8" json 404 "${t15_unknown_task}" GET "/api/tasks/%FF${t15_D:1}"
t15_row "api events, task id %-encoded not UTF-8" json 404 "${t15_unknown_task}" GET "/api/tasks/%FF${t15_D:1}/events"
t15_row "api delete, task id %-encoded not UTF-8" json 404 "${t15_unknown_task}" DELETE "/api/tasks/%FF${t15_D:1}"
t15_row "stream, Last-Event-ID not UTF-8" page 400 'whole number' GET "/stream?task_id=${t15_D}" \
    -H "$(printf 'Last-Event-ID: 1\xff')"
t15_row "api events, Last-Event-ID not UTF-8" json 400 'whole number' GET "/api/tasks/${t15_D}/events" \
    -H "$(printf 'Last-Event-ID: \xfe\xff')"
t15_row "api, Idempotency-Key not UTF-8" json 400 'idempotency key' POST /api/tasks "${t15_json[@]}" \
    -H "$(printf 'Idempotency-Key: key-\xff')" --data-binary '{"query":"e2e bad key"}'
t15_row "api events, from= not a number" json 400 'whole number' GET "/api/tasks/${t15_D}/events?from=ten"

# --- Broken percent-encoding ---------------------------------------------------------------------------------------------

for t15_kind in htmx page; do
    t15_row "generate (${t15_kind}), %ZZ in the form" "${t15_kind}" 400 "${t15_bad_percent}" POST /generate --data-binary 'query=a%ZZb'
    t15_row "generate (${t15_kind}), a form ending in %4" "${t15_kind}" 400 "${t15_bad_percent}" POST /generate --data-binary 'query=a%4'
done
t15_row "check (htmx), %ZZ in task_id" htmx 400 "${t15_bad_percent}" GET "/check?task_id=%ZZ"
t15_row "check (page), task_id ending in %" page 400 "${t15_bad_percent}" GET "/check?task_id=${t15_D}%"
t15_row "task page, %G1 in task_id" page 400 "${t15_bad_percent}" GET "/task?task_id=%G1${t15_D:2}"
t15_row "stream, %ZZ in task_id" page 400 "${t15_bad_percent}" GET "/stream?task_id=%ZZ"
t15_row "cancel (page), %ZZ in task_id" page 400 "${t15_bad_percent}" POST "/cancel?task_id=%ZZ"
t15_row "api get, %ZZ in the path (nginx)" nginx 400 'Bad Request' GET "/api/tasks/ab%ZZ"
t15_row "api delete, %ZZ in the path (nginx)" nginx 400 'Bad Request' DELETE "/api/tasks/ab%ZZ"
t15_row "check, %00 in the path (nginx)" nginx 400 'Bad Request' GET "/check%00?task_id=${t15_D}"

# --- Repeated and unknown parameters ---------------------------------------------------------------------------------

t15_row "generate (htmx), query given twice: the first wins" htmx 200 'task-pending' \
    POST /generate --data 'query=e2e+first&query=e2e+second'
http GET "/api/tasks/${t15_id}"
assert_eq "bad input: generate, repeated query: the task asks the first" "e2e first" "$(json query)"
t15_row "check (htmx), task_id twice: the first (real) wins" htmx 200 "task-${t15_D}" \
    GET "/check?task_id=${t15_D}&task_id=${t15_unknown}"
t15_row "check (htmx), task_id twice: the first (unknown) wins" htmx 404 "${t15_unknown_task}" \
    GET "/check?task_id=${t15_unknown}&task_id=${t15_D}"
t15_row "api, query given twice in JSON: the first wins, as in forms (JSONDecoder)" json 202 '"query":"e2e first"' \
    POST /api/tasks "${t15_json[@]}" --data-binary '{"query":"e2e first","query":"e2e second"}'
t15_row "generate (page), unknown form fields are ignored" page 303 'task\?task_id=' \
    POST /generate --data 'colour=blue&query=e2e+unknown+fields&__proto__=1&query%5B%5D=x'
t15_row "check (htmx), unknown parameters are ignored" htmx 200 "task-${t15_D}" \
    GET "/check?colour=blue&task_id=${t15_D}&callback=alert"
t15_row "api get, unknown parameters are ignored" json 200 "\"id\":\"${t15_D}\"" GET "/api/tasks/${t15_D}?fields=all&x="
t15_row "api create, unknown query-string parameters are ignored" json 202 '"status"' \
    POST "/api/tasks?model=opus&debug=1" "${t15_json[@]}" --data-binary '{"query":"e2e unknown params"}'

# --- Wrong methods: 405 with Allow -----------------------------------------------------------------------------------------

t15_row "GET /generate" page 405 'allows POST only' GET /generate
t15_row "PUT /generate (htmx)" htmx 405 'allows POST only' PUT /generate --data 'query=x'
t15_row "DELETE /generate" page 405 'allows POST only' DELETE /generate
t15_row "POST /check (htmx)" htmx 405 'allows GET, HEAD only' POST "/check?task_id=${t15_D}"
t15_row "POST /task" page 405 'allows GET, HEAD only' POST "/task?task_id=${t15_D}"
t15_row "DELETE /stream" page 405 'allows GET, HEAD only' DELETE "/stream?task_id=${t15_D}"
t15_row "GET /cancel" page 405 'allows POST only' GET "/cancel?task_id=${t15_run}"
t15_row "DELETE /cancel (htmx)" htmx 405 'allows POST only' DELETE "/cancel?task_id=${t15_run}"
t15_row "POST / (the page)" page 405 'allows GET, HEAD only' POST / --data 'query=x'
t15_row "GET /api/tasks" json 405 'allows POST only' GET /api/tasks
t15_row "PUT /api/tasks" json 405 'allows POST only' PUT /api/tasks "${t15_json[@]}" --data-binary '{"query":"x"}'
t15_row "DELETE /api/tasks" json 405 'allows POST only' DELETE /api/tasks
t15_row "OPTIONS /api/tasks" json 405 'allows POST only' OPTIONS /api/tasks
t15_row "POST /api/tasks/ID" json 405 'allows GET, DELETE, HEAD only' POST "/api/tasks/${t15_run}" \
    "${t15_json[@]}" --data-binary '{"query":"x"}'
t15_row "PUT /api/tasks/ID" json 405 'allows GET, DELETE, HEAD only' PUT "/api/tasks/${t15_run}"
t15_row "PATCH /api/tasks/ID" json 405 'allows GET, DELETE, HEAD only' PATCH "/api/tasks/${t15_run}"
t15_row "POST /api/tasks/ID/events" json 405 'allows GET, HEAD only' POST "/api/tasks/${t15_run}/events"
t15_row "DELETE /api/tasks/ID/events" json 405 'allows GET, HEAD only' DELETE "/api/tasks/${t15_run}/events"

# --- HEAD: headers only, the status GET would get --------------------------------------------------------------------------

t15_head "/ (the page)" / 200 text/html
t15_head "/check, finished task" "/check?task_id=${t15_D}" 200 text/html
t15_head "/check, unknown task" "/check?task_id=${t15_unknown}" 404 text/html
t15_head "/check, %ZZ" "/check?task_id=%ZZ" 400 text/html
t15_head "/task, finished task" "/task?task_id=${t15_D}" 200 text/html
t15_head "/stream, finished task" "/stream?task_id=${t15_D}" 200 text/event-stream
t15_head "/stream, running task" "/stream?task_id=${t15_run}" 200 text/event-stream noget
t15_head "/api/tasks/ID, finished task" "/api/tasks/${t15_D}" 200 application/json
t15_head "/api/tasks/ID, unknown task" "/api/tasks/${t15_unknown}" 404 application/json
t15_head "/api/tasks/ID/events, finished task" "/api/tasks/${t15_D}/events" 200 text/event-stream
t15_head "/api/tasks/ID/events, running task" "/api/tasks/${t15_run}/events" 200 text/event-stream noget
t15_head "/generate (POST only)" /generate 405 text/html
t15_head "/cancel (POST only)" "/cancel?task_id=${t15_run}" 405 text/html
t15_head "/api/tasks (POST only)" /api/tasks 405 application/json

# --- Content types on the API (415) and the form ----------------------------------------------------------------------------

t15_row "api, no Content-Type" json 415 'application/json' POST /api/tasks -H 'Content-Type:' --data-binary '{"query":"x"}'
t15_row "api, text/plain" json 415 'application/json' POST /api/tasks -H 'Content-Type: text/plain' --data-binary '{"query":"x"}'
t15_row "api, a form body" json 415 'application/json' POST /api/tasks --data 'query=x'
t15_row "api, multipart/form-data" json 415 'application/json' POST /api/tasks -F 'query=x'
t15_row "api, application/jsonx" json 415 'application/json' POST /api/tasks -H 'Content-Type: application/jsonx' \
    --data-binary '{"query":"x"}'
t15_row "api, an empty Content-Type parameter list" json 415 'application/json' POST /api/tasks \
    -H 'Content-Type: ; charset=utf-8' --data-binary '{"query":"x"}'
t15_row "api, APPLICATION/JSON; charset=UTF-8 is accepted" json 202 '"status"' POST /api/tasks \
    -H 'Content-Type: APPLICATION/JSON; charset=UTF-8' --data-binary '{"query":"e2e upper-case type"}'
t15_row "generate (htmx), a JSON body" htmx 415 'x-www-form-urlencoded' POST /generate "${t15_json[@]}" \
    --data-binary '{"query":"x"}'
t15_row "generate (page), no Content-Type with a body" page 415 'x-www-form-urlencoded' POST /generate \
    -H 'Content-Type:' --data-binary 'query=x'
t15_row "generate (htmx), multipart/form-data" htmx 415 'x-www-form-urlencoded' POST /generate -F 'query=x'

# --- Malformed JSON, wrong JSON types, extra fields ----------------------------------------------------------------------------

t15_row "api, empty body" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" --data-binary ''
t15_row "api, truncated JSON" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":'
t15_row "api, unquoted name" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" --data-binary '{query:"x"}'
t15_row "api, trailing comma" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":"x",}'
t15_row "api, two documents" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"query":"x"}{"query":"y"}'
t15_row "api, a raw control character in a string" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary "$(printf '{"query":"a\001b"}')"
t15_row "api, 10000 nested arrays" json 400 'not valid JSON' POST /api/tasks "${t15_json[@]}" \
    --data-binary "$(printf '[%.0s' $(seq 1 10000))"
t15_row "api, a JSON array" json 400 'JSON object' POST /api/tasks "${t15_json[@]}" --data-binary '[{"query":"x"}]'
t15_row "api, a JSON string" json 400 'JSON object' POST /api/tasks "${t15_json[@]}" --data-binary '"x"'
t15_row "api, JSON null" json 400 'JSON object' POST /api/tasks "${t15_json[@]}" --data-binary 'null'
t15_row "api, query is a number" json 400 'must be a string' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":42}'
t15_row "api, query is true" json 400 'must be a string' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":true}'
t15_row "api, query is null" json 400 'must be a string' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":null}'
t15_row "api, query is an array" json 400 'must be a string' POST /api/tasks "${t15_json[@]}" --data-binary '{"query":["x"]}'
t15_row "api, query is an object" json 400 'must be a string' POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"query":{"text":"x"}}'
t15_row "api, an extra field" json 400 'Unknown field\(s\): model' POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"query":"x","model":"claude-opus"}'
t15_row "api, an extra null field" json 400 'Unknown field\(s\): extra' POST /api/tasks "${t15_json[@]}" \
    --data-binary '{"extra":null,"query":"x"}'

# --- Very long URLs and headers ------------------------------------------------------------------------------------------------

t15_row "check, a 6 KB URL reaches the backend" htmx 200 "task-${t15_D}" GET "/check?task_id=${t15_D}&pad=${t15_6k}"
t15_row "api get, a 6 KB URL reaches the backend" json 200 "\"id\":\"${t15_D}\"" GET "/api/tasks/${t15_D}?pad=${t15_6k}"
t15_row "check, a 6 KB header reaches the backend" htmx 200 "task-${t15_D}" GET "/check?task_id=${t15_D}" \
    -H "X-Padding: ${t15_6k}"
t15_row "check, a 20 KB URL (HTTP/1.1): nginx's 414" nginx 414 'Request-URI Too Large' \
    GET "/check?task_id=${t15_D}&pad=${t15_20k}" --http1.1
t15_row "api get, a 20 KB task id (HTTP/1.1): nginx's 414, as JSON" json 414 'too long' \
    GET "/api/tasks/${t15_20k}" --http1.1
t15_row "check, a 20 KB header (HTTP/1.1): nginx's 400" nginx 400 'Header Or Cookie Too Large' \
    GET "/check?task_id=${t15_D}" -H "X-Padding: ${t15_20k}" --http1.1
t15_row "api create, a 20 KB header (HTTP/1.1): nginx's 400, as JSON" json 400 'headers that are too large' \
    POST /api/tasks "${t15_json[@]}" -H "Idempotency-Key: ${t15_20k}" --data-binary '{"query":"x"}' --http1.1
t15_row "check, a 20 KB URL (HTTP/2): nginx refuses" refused '000|4[0-9][0-9]' '' \
    GET "/check?task_id=${t15_D}&pad=${t15_20k}"
t15_row "api get, a 20 KB header (HTTP/2): nginx refuses" refused '000|4[0-9][0-9]' '' \
    GET "/api/tasks/${t15_D}" -H "X-Padding: ${t15_20k}"
t15_row "api, a 300-character Idempotency-Key" json 400 'idempotency key' POST /api/tasks "${t15_json[@]}" \
    -H "Idempotency-Key: ${t15_6k:0:300}" --data-binary '{"query":"x"}'

# --- Thousands of parameters ----------------------------------------------------------------------------------------------------

t15_row "generate (htmx), 5000 form fields and a query" htmx 200 'task-pending' \
    POST /generate --data-binary "${t15_pairs_5000}query=e2e+5000+fields"
t15_row "generate (page), 5000 form fields and no query" page 400 "${t15_missing}" \
    POST /generate --data-binary "${t15_pairs_5000}"
t15_row "check (htmx), 1500 query parameters and the id" htmx 200 "task-${t15_D}" \
    GET "/check?${t15_pairs_1500}task_id=${t15_D}"
t15_row "check, 5000 query parameters (HTTP/1.1): nginx's 414" nginx 414 'Request-URI Too Large' \
    GET "/check?${t15_pairs_5000}task_id=${t15_D}" --http1.1
t15_row "api, 5000 unknown JSON fields: a short message" json 400 '^Unknown field\(s\): f1, f10, .*\(5000 in all\)' \
    POST /api/tasks "${t15_json[@]}" --data-binary "{${t15_fields_5000},\"query\":\"x\"}"
check "bad input: api, 5000 unknown fields: the answer stays under 1 KB" "${#HTTP_BODY} bytes" \
    test "${#HTTP_BODY}" -lt 1024

# --- Unknown, malformed, truncated task ids (expired: below) ---------------------------------------------------------------------

declare -A t15_ids=(
    ["unknown"]="${t15_unknown}"
    ["malformed"]="abc%21%24*()"
    ["markup"]="%3Cimg%20src=x%20onerror=alert(1)%3E"
    ["truncated"]="${t15_truncated}"
    ["one too long"]="${t15_overlong}"
    ["empty"]=""
)
for t15_which in unknown malformed markup truncated "one too long" empty; do
    t15_value="${t15_ids[${t15_which}]}"
    t15_row "check (htmx), ${t15_which} id" htmx 404 "${t15_unknown_task}" GET "/check?task_id=${t15_value}"
    t15_row "check (page), ${t15_which} id" page 404 "${t15_unknown_task}" GET "/check?task_id=${t15_value}"
    if [[ "${t15_which}" == markup ]]; then
        assert_body_lacks "bad input: check (page), a markup id is never reflected as markup" '<img src=x'
    fi
    t15_row "task page, ${t15_which} id" page 404 "${t15_unknown_task}" GET "/task?task_id=${t15_value}"
    t15_row "stream, ${t15_which} id" page 404 "${t15_unknown_task}" GET "/stream?task_id=${t15_value}"
    t15_row "cancel (htmx), ${t15_which} id" htmx 404 "${t15_unknown_task}" POST "/cancel?task_id=${t15_value}"
    if [[ -n "${t15_value}" ]]; then
        t15_row "api get, ${t15_which} id" json 404 "${t15_unknown_task}" GET "/api/tasks/${t15_value}"
        t15_row "api events, ${t15_which} id" json 404 "${t15_unknown_task}" GET "/api/tasks/${t15_value}/events"
        t15_row "api delete, ${t15_which} id" json 404 "${t15_unknown_task}" DELETE "/api/tasks/${t15_value}"
    fi
done
t15_row "check (htmx), no task_id at all" htmx 404 "${t15_unknown_task}" GET /check
t15_row "cancel (page), no task_id at all" page 404 "${t15_unknown_task}" POST /cancel

# --- Control characters and right-to-left marks ---------------------------------------------------------------------------------

t15_faithful "api, control characters" api \
    "'ctl \\x01 esc \\x1b[31m red \\t tab \\n newline \\r cr \\x7f del <b>&amp;</b> end'"
t15_faithful "htmx, right-to-left marks" htmx \
    "'rtl \\u202e gpj.exe \\u202c then \\u200f rlm \\u200e lrm \\u2067 isolate \\u2069 <i>x</i>'"
t15_faithful "plain form, NUL, bell, BOM, zero-width joiner" plain \
    "'nul \\x00 bell \\x07 bom \\ufeff zwj a\\u200db nbsp\\u00a0end \\u0645\\u0631\\u062d\\u0628\\u0627'"
t15_faithful "api, a query that starts with control characters" api "'\\x01\\x02\\u202e start'"

# The running sentinel ends here: a backend restart would otherwise wait for it.
http DELETE "/api/tasks/${t15_run}"
t15_run=""

# --- A small --max-query-bytes and --result-ttl: the configurable limit, expired ids ------------------------------------

restart_backend "bad input: backend restarts with --max-query-bytes 64 --result-ttl 2" --max-query-bytes 64 --result-ttl 2
t15_pid="$(saved_pid "${E2E_DIR}" backend)"
# The finished sentinel would expire too: only a running one now (running tasks are never swept).
t15_done=""
t15_start_running_sentinel " (small limits)"

t15_q64="$(head -c 64 /dev/zero | tr '\0' 'q')"
t15_row "limit 64: generate (htmx), 65 bytes" htmx 413 'at most 64 bytes' POST /generate --data "query=${t15_q64}q"
t15_row "limit 64: generate (page), 65 bytes" page 413 'at most 64 bytes' POST /generate --data "query=${t15_q64}q"
t15_row "limit 64: api, 65 bytes" json 413 'at most 64 bytes' POST /api/tasks "${t15_json[@]}" \
    --data-binary "{\"query\":\"${t15_q64}q\"}"
t15_row "limit 64: api, 33 two-byte characters (66 bytes)" json 413 'at most 64 bytes' POST /api/tasks "${t15_json[@]}" \
    --data-binary "{\"query\":\"$(printf '\\u00e9%.0s' $(seq 1 33))\"}"
t15_row "limit 64: generate (htmx), exactly 64 bytes" htmx 200 'task-pending' POST /generate --data "query=${t15_q64}"
t15_row "limit 64: api, 64 bytes inside surrounding spaces" json 202 '"status"' POST /api/tasks "${t15_json[@]}" \
    --data-binary "{\"query\":\"   ${t15_q64}   \"}"

api_create "e2e bad input soon expired"
t15_expired="${TASK_ID}"
if [[ -n "${t15_expired}" ]] && poll_api_status 30 "${t15_expired}" succeeded; then
    pass "bad input: a task to expire succeeds"
else
    fail "bad input: a task to expire succeeds" "$(last_response)"
fi
if poll_status 30 404 GET "/api/tasks/${t15_expired}"; then
    pass "bad input: the task expires after --result-ttl"
else
    fail "bad input: the task expires after --result-ttl" "$(last_response)"
fi
t15_row "check (htmx), expired id" htmx 404 "${t15_unknown_task}" GET "/check?task_id=${t15_expired}"
t15_row "check (page), expired id" page 404 "${t15_unknown_task}" GET "/check?task_id=${t15_expired}"
t15_row "task page, expired id" page 404 "${t15_unknown_task}" GET "/task?task_id=${t15_expired}"
t15_row "stream, expired id" page 404 "${t15_unknown_task}" GET "/stream?task_id=${t15_expired}"
t15_row "cancel (htmx), expired id" htmx 404 "${t15_unknown_task}" POST "/cancel?task_id=${t15_expired}"
t15_row "cancel (page), expired id" page 404 "${t15_unknown_task}" POST "/cancel?task_id=${t15_expired}"
t15_row "api get, expired id" json 404 "${t15_unknown_task}" GET "/api/tasks/${t15_expired}"
t15_row "api events, expired id" json 404 "${t15_unknown_task}" GET "/api/tasks/${t15_expired}/events"
t15_row "api delete, expired id" json 404 "${t15_unknown_task}" DELETE "/api/tasks/${t15_expired}"

http DELETE "/api/tasks/${t15_run}"
t15_run=""
restart_backend "bad input: backend restarts with the suite's flags"
http GET /ping
assert_eq "bad input: the restored backend answers /ping" "pong" "${HTTP_BODY}"
true
