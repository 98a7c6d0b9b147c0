#!/usr/bin/env bash
# shellcheck shell=bash
#
# Tests/EndToEnd/lib.sh: assertions and HTTP helpers for the end-to-end suite. Sourced by run.sh (and through it
# by every test_NN_*.sh); not meant to be run.
#
# Every assertion prints one line, `PASS name` or `FAIL name: reason`, and never stops the run. HTTP goes through
# nginx over verified TLS (curl --cacert) to https://localhost:E2E_PORT. Waits are bounded polls, never timings.
#
# Globals set by run.sh: E2E_DIR (run directory), E2E_PORT, E2E_SOCKET, E2E_BIN, E2E_KEY (the API key given to
# the backend, which must never show), E2E_BACKEND_FLAGS (array: flags every backend start gets),
# E2E_CLEANUP_HOOKS (array: commands run.sh's cleanup runs first, on any exit; a test adds its own stopper).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    printf 'Usage: source Tests/EndToEnd/lib.sh (from Tests/EndToEnd/run.sh)\n'
    exit 0
fi

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILURES=()

# The last response, set by http().
HTTP_STATUS=""
HTTP_BODY=""
HTTP_HEADERS=""
# The task id found by htmx_generate, plain_generate or api_create.
TASK_ID=""

# --- Results --------------------------------------------------------------------------------------------------------

# Records a passed check. $1: its name.
pass() {
    E2E_PASSED=$((E2E_PASSED + 1))
    printf 'PASS %s\n' "$1"
}

# Records a failed check. $1: its name. $2: the reason (one line).
fail() {
    local reason="${2//$'\n'/ }"
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILURES+=("$1")
    printf 'FAIL %s: %s\n' "$1" "${reason:0:400}"
}

# Passes when a command succeeds. $1: name. $2: reason shown on failure. $@ (rest): the command.
check() {
    local name="$1" reason="$2"
    shift 2
    if "$@" >/dev/null 2>&1; then
        pass "${name}"
    else
        fail "${name}" "${reason}"
    fi
}

# Passes when a command fails. $1: name. $2: reason shown on failure. $@ (rest): the command.
refute() {
    local name="$1" reason="$2"
    shift 2
    if "$@" >/dev/null 2>&1; then
        fail "${name}" "${reason}"
    else
        pass "${name}"
    fi
}

# Passes when a file exists and does not contain a string. $1: name. $2: the string. $3: the file.
assert_file_lacks() {
    if [[ ! -f "$3" ]]; then
        fail "$1" "${3##*/} is missing"
    elif grep -qF -- "$2" "$3"; then
        fail "$1" "${3##*/} contains '$2'"
    else
        pass "$1"
    fi
}

# Succeeds when a process has exited (a zombie counts as exited). $1: the pid.
process_gone() {
    ! pid_alive "$1"
}

# Passes when two strings are equal. $1: name. $2: expected. $3: actual.
assert_eq() {
    if [[ "$3" == "$2" ]]; then
        pass "$1"
    else
        fail "$1" "expected '$2', got '$3'"
    fi
}

# Passes when a string matches an extended regular expression. $1: name. $2: regex. $3: the string.
assert_match() {
    if [[ "$3" =~ $2 ]]; then
        pass "$1"
    else
        fail "$1" "'$3' does not match /$2/"
    fi
}

# --- HTTP -----------------------------------------------------------------------------------------------------------

# Sends one request through nginx. Sets HTTP_STATUS ("000" when there was no answer), HTTP_BODY, HTTP_HEADERS
# (the last response's header block, CR removed) and appends the whole answer to E2E_DIR/responses.log.
# $1: method. $2: path with query string. $@ (rest): more curl arguments (headers, data).
http() {
    local method="$1" path="$2"
    shift 2
    local args=(-sS --max-time 20 --cacert "${E2E_DIR}/cert.pem" -o "${E2E_DIR}/last.body"
        -D "${E2E_DIR}/last.headers" -w '%{http_code}')
    case "${method}" in
        GET) ;;
        HEAD) args+=(-I) ;;
        *) args+=(-X "${method}") ;;
    esac
    : >"${E2E_DIR}/last.body"
    : >"${E2E_DIR}/last.headers"
    HTTP_STATUS="$(curl "${args[@]}" "$@" "https://localhost:${E2E_PORT}${path}" 2>"${E2E_DIR}/last.curl")" || true
    [[ -n "${HTTP_STATUS}" ]] || HTTP_STATUS="000"
    HTTP_BODY="$(cat "${E2E_DIR}/last.body")"
    # Keep the last header block only (a 100 Continue may come first).
    HTTP_HEADERS="$(tr -d '\r' <"${E2E_DIR}/last.headers" | awk '/^HTTP\// { block = "" } { block = block $0 "\n" }
        END { printf "%s", block }')"
    {
        printf '### %s %s -> %s\n%s\n' "${method}" "${path}" "${HTTP_STATUS}" "${HTTP_HEADERS}"
        cat "${E2E_DIR}/last.body"
        printf '\n'
    } >>"${E2E_DIR}/responses.log"
    record_api_answer "${method}" "${path}" "${HTTP_STATUS}" "${HTTP_HEADERS}" "${HTTP_BODY}"
}

# --- The OpenAPI document -------------------------------------------------------------------------------------------
# Every answer under /api/ that the suite sees (http, raw_http, and streams read with record_api_answer) is kept in
# E2E_DIR/api-answers/; at the end run.sh checks them all against openapi.yaml (check_api_answers).

E2E_API_ANSWERS=0

# Keeps one answer for the OpenAPI check when its path is under /api/. Builtins only (no fork): http() calls it
# for every request, and some tests depend on how fast requests follow each other (test_50's rate limit).
# $1: method. $2: path with query string. $3: status. $4: the header block. $5: the body.
record_api_answer() {
    [[ "$2" == /api/* ]] || return 0
    local dir="${E2E_DIR}/api-answers" stem
    [[ -d "${dir}" ]] || mkdir -p "${dir}"
    E2E_API_ANSWERS=$((E2E_API_ANSWERS + 1))
    printf -v stem '%s/%06d' "${dir}" "${E2E_API_ANSWERS}"
    printf '%s\n%s\n%s\n' "$1" "$2" "$3" >"${stem}.meta"
    printf '%s\n' "$4" >"${stem}.headers"
    printf '%s' "$5" >"${stem}.body"
}

# Checks every recorded API answer against openapi.yaml (Tests/EndToEnd/openapi_check.py, with the pinned OpenAPI
# tools). One check: passed when all conform; otherwise one failure per problem (the first 20).
check_api_answers() {
    local name="openapi: every API answer the suite saw conforms to openapi.yaml" out rc=0 line count=0
    [[ -d "${E2E_DIR}/api-answers" ]] || return 0
    if ! ensure_openapi_tools >>"${E2E_DIR}/e2e.log" 2>&1; then
        fail "${name}" "the OpenAPI tools could not be installed (scripts/lib.sh ensure_openapi_tools)"
        return
    fi
    out="$("$(openapi_python)" "${LONGHAUL_ROOT}/Tests/EndToEnd/openapi_check.py" "${LONGHAUL_ROOT}/openapi.yaml" \
        "${E2E_DIR}/api-answers" 2>&1)" || rc=$?
    if [[ ${rc} -eq 0 ]]; then
        pass "${name} (${out##*$'\n'})"
        return
    fi
    while IFS= read -r line; do
        [[ "${line}" == "checked "* ]] && continue
        count=$((count + 1))
        ((count <= 20)) && fail "${name}" "${line}"
    done <<<"${out}"
    ((count > 0)) || fail "${name}" "openapi_check.py exited ${rc}: ${out:0:300}"
}

# Prints the value of a header of the last response (case-insensitive name; the first one if repeated).
# $1: header name.
header() {
    local name
    name="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')"
    printf '%s\n' "${HTTP_HEADERS}" | awk -v name="${name}" '
        { i = index($0, ":") }
        i > 0 && tolower(substr($0, 1, i - 1)) == name {
            v = substr($0, i + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v); print v; exit
        }'
}

# A short description of the last response, for failure messages.
last_response() {
    local body="${HTTP_BODY//$'\n'/ }"
    printf 'HTTP %s, body: %s' "${HTTP_STATUS}" "${body:0:200}"
}

# Passes when the last status is one of the expected ones. $1: name. $@ (rest): expected statuses.
assert_status() {
    local name="$1" expected
    shift
    for expected in "$@"; do
        if [[ "${HTTP_STATUS}" == "${expected}" ]]; then
            pass "${name}"
            return 0
        fi
    done
    fail "${name}" "expected HTTP $*; got $(last_response)"
}

# Passes when the last body contains a string. $1: name. $2: the string.
assert_body_contains() {
    if [[ "${HTTP_BODY}" == *"$2"* ]]; then
        pass "$1"
    else
        fail "$1" "body lacks '$2'; $(last_response)"
    fi
}

# Passes when the last body does not contain a string. $1: name. $2: the string.
assert_body_lacks() {
    if [[ "${HTTP_BODY}" != *"$2"* ]]; then
        pass "$1"
    else
        fail "$1" "body contains '$2'; $(last_response)"
    fi
}

# Passes when a header of the last response has a value. $1: name. $2: header. $3: expected value.
assert_header() {
    local actual
    actual="$(header "$2")"
    if [[ "${actual}" == "$3" ]]; then
        pass "$1"
    else
        fail "$1" "header $2 is '${actual}', expected '$3'"
    fi
}

# Passes when a header of the last response matches an extended regex. $1: name. $2: header. $3: regex.
assert_header_match() {
    local actual
    actual="$(header "$2")"
    if [[ "${actual}" =~ $3 ]]; then
        pass "$1"
    else
        fail "$1" "header $2 is '${actual}', expected to match /$3/"
    fi
}

# Prints a field of a JSON document: strings as they are, other values as JSON, nothing when absent.
# $1: dotted path (error.type). $2 (optional): the file, default the last body.
json() {
    python3 - "$1" "${2:-${E2E_DIR}/last.body}" <<'EOF' 2>/dev/null || true
import json, sys
path, file = sys.argv[1], sys.argv[2]
try:
    value = json.load(open(file, encoding="utf-8"))
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
except Exception:
    sys.exit(0)
print(value if isinstance(value, str) else json.dumps(value))
EOF
}

# Passes when the last answer is a JSON error of the API's shape {"error":{"type","message"}}.
# $1: name. $2: expected HTTP status. $3 (optional): expected error type.
assert_json_error() {
    local name="$1" status="$2" type="${3:-}" actual_type message ctype
    actual_type="$(json error.type)"
    message="$(json error.message)"
    ctype="$(header Content-Type)"
    if [[ "${HTTP_STATUS}" != "${status}" ]]; then
        fail "${name}" "expected HTTP ${status}; got $(last_response)"
    elif [[ "${ctype}" != application/json* ]]; then
        fail "${name}" "Content-Type '${ctype}' is not JSON; $(last_response)"
    elif [[ -z "${actual_type}" || -z "${message}" ]]; then
        fail "${name}" "no error.type and error.message; $(last_response)"
    elif [[ -n "${type}" && "${actual_type}" != "${type}" ]]; then
        fail "${name}" "error.type is '${actual_type}', expected '${type}'"
    else
        pass "${name}"
    fi
}

# --- The backend and its tasks ---------------------------------------------------------------------------------------

# Succeeds while the backend process runs.
backend_alive() {
    pid_alive "$(saved_pid "${E2E_DIR}" backend)"
}

# Stops the backend and starts it again with the suite's flags plus the given ones. Records one check.
# $1: check name. $@ (rest): extra longhaul flags.
restart_backend() {
    local name="$1"
    shift
    if ! stop_backend "${E2E_DIR}" 40; then
        fail "${name}: previous backend stops on SIGTERM" "it had to be killed after 40 s"
    fi
    if start_backend "${E2E_DIR}" "${E2E_SOCKET}" "${E2E_BIN}" "${E2E_BACKEND_FLAGS[@]}" "$@" 2>>"${E2E_DIR}/e2e.log"; then
        pass "${name}"
    else
        fail "${name}" "the backend did not start with: ${E2E_BACKEND_FLAGS[*]} $*; $(tail -n 3 "${E2E_DIR}/backend.log" 2>/dev/null)"
    fi
}

# Repeats a request every 0.5 s until its body contains a string, for at most TIMEOUT seconds (or until the
# backend has died). Leaves the last answer in HTTP_*.
# $1: timeout in seconds. $2: the string. $@ (rest): http() arguments.
# Returns 0 when found.
poll_body() {
    local timeout="$1" needle="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    while true; do
        http "$@"
        [[ "${HTTP_BODY}" == *"${needle}"* ]] && return 0
        ((SECONDS < deadline)) || return 1
        backend_alive || return 1
        sleep 0.5
    done
}

# Like poll_body, until the status is the given one.
# $1: timeout in seconds. $2: the status. $@ (rest): http() arguments.
poll_status() {
    local timeout="$1" status="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    while true; do
        http "$@"
        [[ "${HTTP_STATUS}" == "${status}" ]] && return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# Polls GET /api/tasks/ID until its "status" is one of the given ones.
# $1: timeout in seconds. $2: task id. $@ (rest): accepted statuses.
# Returns 0 when reached; the last answer stays in HTTP_*.
poll_api_status() {
    local timeout="$1" id="$2" deadline status wanted
    shift 2
    deadline=$((SECONDS + timeout))
    while true; do
        http GET "/api/tasks/${id}"
        status="$(json status)"
        for wanted in "$@"; do
            [[ "${status}" == "${wanted}" ]] && return 0
        done
        ((SECONDS < deadline)) || return 1
        backend_alive || return 1
        sleep 0.5
    done
}

# Prints the first task id in a text (from task_id=ID).
# $1: the text.
task_id_in() {
    printf '%s' "$1" | grep -oE 'task_id=[A-Za-z0-9_-]+' | head -n 1 | cut -d= -f2 || true
}

# POSTs /generate as htmx does. Sets TASK_ID (empty when none).
# $1: the query.
htmx_generate() {
    http POST /generate -H 'HX-Request: true' -H 'HX-Target: result' --data-urlencode "query=$1"
    # shellcheck disable=SC2034 # read by the test files
    TASK_ID="$(task_id_in "${HTTP_BODY}")"
}

# POSTs /generate as a browser without JavaScript does. Sets TASK_ID from the Location header.
# $1: the query.
plain_generate() {
    http POST /generate --data-urlencode "query=$1"
    # shellcheck disable=SC2034 # read by the test files
    TASK_ID="$(task_id_in "$(header Location)")"
}

# Prints a JSON object {"query": QUERY}.
# $1: the query.
json_query() {
    python3 -c 'import json, sys; print(json.dumps({"query": sys.argv[1]}))' "$1"
}

# POSTs /api/tasks with {"query": QUERY}. Sets TASK_ID from the answer's "id".
# $1: the query.
api_create() {
    http POST /api/tasks -H 'Content-Type: application/json' --data-binary "$(json_query "$1")"
    # shellcheck disable=SC2034 # read by the test files
    TASK_ID="$(json id)"
}

# Prints a random id in the backend's format (128 random bits, base64url).
random_task_id() {
    python3 -c 'import secrets; print(secrets.token_urlsafe(16))'
}

# --- Raw HTTP/1.1 (test_15_bad_input) --------------------------------------------------------------------------------

# Sends one HTTP/1.1 request exactly as given (no normalisation by curl: raw bytes in the request line, HEAD) through
# nginx over verified TLS with Connection: close, and reads the answer to the end of the connection, so that the
# bytes after the header block are seen as they are (a HEAD answer must have none). Sets HTTP_STATUS ("000" when
# there was no answer), HTTP_HEADERS (CR removed), HTTP_BODY, RAW_BODY_BYTES (how many bytes followed the header
# block) and appends the answer to E2E_DIR/responses.log like http().
# $1: method. $2: path with query string, sent as is (printf escapes such as \xff are expanded). $@ (rest): header
# lines ("Name: value").
RAW_BODY_BYTES=0
raw_http() {
    local method="$1" path="$2" result
    shift 2
    result="$(python3 - "${E2E_PORT}" "${E2E_DIR}/cert.pem" "${E2E_DIR}/last.headers" "${E2E_DIR}/last.body" \
        "${method}" "$(printf '%b' "${path}")" "$@" <<'PY' 2>>"${E2E_DIR}/last.curl"
import os, socket, ssl, sys
port, cafile, headers_file, body_file, method, path = sys.argv[1:7]
lines = sys.argv[7:]
context = ssl.create_default_context(cafile=cafile)
context.set_alpn_protocols(["http/1.1"])
request = b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (
    method.encode(), os.fsencode(path))
for line in lines:
    request += os.fsencode(line) + b"\r\n"
request += b"\r\n"
answer = b""
try:
    with socket.create_connection(("localhost", int(port)), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(request)
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
except (OSError, ssl.SSLError) as error:
    print(f"raw_http: {error}", file=sys.stderr)
head, _, body = answer.partition(b"\r\n\r\n")
open(headers_file, "wb").write(head + b"\r\n")
open(body_file, "wb").write(body)
status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "000"
print(status, len(body))
PY
)" || true
    HTTP_STATUS="${result%% *}"
    RAW_BODY_BYTES="${result##* }"
    [[ -n "${HTTP_STATUS}" ]] || HTTP_STATUS="000"
    [[ "${RAW_BODY_BYTES}" =~ ^[0-9]+$ ]] || RAW_BODY_BYTES=0
    HTTP_BODY="$(cat "${E2E_DIR}/last.body")"
    HTTP_HEADERS="$(tr -d '\r' <"${E2E_DIR}/last.headers")"
    {
        printf '### raw %s %s -> %s\n%s\n' "${method}" "${path:0:200}" "${HTTP_STATUS}" "${HTTP_HEADERS}"
        cat "${E2E_DIR}/last.body"
        printf '\n'
    } >>"${E2E_DIR}/responses.log"
    record_api_answer "${method}" "${path}" "${HTTP_STATUS}" "${HTTP_HEADERS}" "${HTTP_BODY}"
}
