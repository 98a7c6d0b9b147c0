#!/usr/bin/env bash
# shellcheck shell=bash
# Security (issue 8): only nginx reaches the FastCGI socket and the backend listens on no network port; security
# headers on every answer, nginx's own errors included; model output stays text in the stream too; task ids are
# neither guessable nor listed anywhere. (The API key: test_07 and test_98.) Sourced by run.sh.

backend_alive || restart_backend "security: backend running"
t16_pid="$(saved_pid "${E2E_DIR}" backend)"

# --- The FastCGI socket: nginx only ----------------------------------------------------------------------------------

# Connects to a unix socket as a user. $1: user. $2: socket. Prints "connected" or the error's class name.
t16_connect_as() {
    runuser -u "$1" -- python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(type(e).__name__)' "$2" 2>&1 || true
}

t16_mode="$(stat -c '%a' "${E2E_SOCKET}")"
check "socket: no access for other users (mode ${t16_mode})" "mode ${t16_mode} lets any local user in" \
    test "$((8#${t16_mode} & 8#007))" -eq 0
if [[ ${EUID} -eq 0 ]]; then
    # As root, nginx's workers run as www-data (render_nginx); anyone else must be refused by the kernel.
    assert_eq "socket: group www-data (nginx's workers)" "www-data" "$(stat -c '%G' "${E2E_SOCKET}")"
    assert_eq "socket: www-data (nginx) connects" "connected" "$(t16_connect_as www-data "${E2E_SOCKET}")"
    assert_eq "socket: another local user (nobody) is refused" "PermissionError" \
        "$(t16_connect_as nobody "${E2E_SOCKET}")"
else
    assert_eq "socket: owner only when not root" "600" "${t16_mode}"
fi

# Inodes of the backend's sockets that listen on TCP or sit bound on UDP: there must be none (the backend talks
# FastCGI on the unix socket only; its outgoing connections to the LLM API and Redis are not listeners).
t16_listeners="$(python3 - "${t16_pid}" <<'EOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target.startswith("socket:["):
        inodes.add(target[8:-1])
found = []
for proto in ("tcp", "tcp6", "udp", "udp6"):
    try:
        lines = open(f"/proc/net/{proto}").read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        f = line.split()
        local, remote, state, inode = f[1], f[2], f[3], f[9]
        listening = state == "0A" if proto.startswith("tcp") else set(remote.split(":")[1]) == {"0"}
        if inode in inodes and listening:
            found.append(f"{proto} {local}")
print(" ".join(found))
EOF
)"
assert_eq "socket: the backend listens on no TCP or UDP port" "" "${t16_listeners}"

# --- Security headers on every answer --------------------------------------------------------------------------------

t16_csp="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

# Checks the status and the security headers of the last answer. $1: what it is. $2: expected status.
t16_headers() {
    local headers_ok=1 name value
    assert_status "headers: $1 is ${2}" "$2"
    for name in Content-Security-Policy X-Content-Type-Options Referrer-Policy X-Frame-Options; do
        case "${name}" in
            Content-Security-Policy) value="${t16_csp}" ;;
            X-Content-Type-Options) value=nosniff ;;
            Referrer-Policy) value=no-referrer ;;
            X-Frame-Options) value=DENY ;;
        esac
        if [[ "$(header "${name}")" != "${value}" ]]; then
            fail "headers: $1 has every security header" "${name} is '$(header "${name}")'; $(last_response)"
            headers_ok=0
            break
        fi
    done
    [[ ${headers_ok} -eq 0 ]] || pass "headers: $1 has every security header"
    assert_header_match "headers: $1 names no version" Server '^(nginx)?$'
}

http GET /
t16_headers "the page (backend 200)" 200
http POST /generate -H 'HX-Request: true' --data-urlencode 'query=   '
t16_headers "a blank query (backend 400 fragment)" 400
http GET /no-such-page
t16_headers "an unknown path (backend 404 page)" 404
http GET "/api/tasks/$(random_task_id)"
t16_headers "an unknown task (backend 404 JSON)" 404
http DELETE /generate
t16_headers "a wrong method (backend 405)" 405
http POST /api/tasks -H 'Content-Type: text/plain' --data-binary 'x'
t16_headers "a wrong content type (backend 415)" 415
http GET /static/no-such-file.css
t16_headers "a missing static file (nginx 404)" 404
http HEAD /
t16_headers "HEAD of the page" 200
http GET /favicon.ico
t16_headers "the favicon (nginx 204)" 204
head -c 1100000 /dev/zero | tr '\0' 'a' >"${E2E_DIR}/t16-big-body"
http POST /generate --data-binary "@${E2E_DIR}/t16-big-body"
t16_headers "a body over client_max_body_size (nginx 413)" 413
# Over HTTP/1.1: over HTTP/2, nginx ends the stream (GOAWAY, ENHANCE_YOUR_CALM) instead of answering.
http GET "/check?task_id=$(head -c 20000 /dev/zero | tr '\0' 'a')" --http1.1
t16_headers "a URL over nginx's buffers (nginx 414)" 414
http GET / --http1.1 -H "X-Padding: $(head -c 20000 /dev/zero | tr '\0' 'a')"
t16_headers "a header over nginx's buffers (nginx 400)" 400

# While the backend is down nginx answers itself (503 page, 503 JSON): with the same headers.
if stop_backend "${E2E_DIR}" 40; then
    http GET /
    t16_headers "backend down: the page (nginx 503)" 503
    http GET "/api/tasks/$(random_task_id)"
    t16_headers "backend down: the API (nginx 503 JSON)" 503
fi
restart_backend "security: backend restarts after the down checks"

# --- Model output in the stream stays text ---------------------------------------------------------------------------

htmx_generate 'e2e [mock:html] security stream'
t16_html_id="${TASK_ID}"
poll_api_status 30 "${t16_html_id}" succeeded failed >/dev/null || true
curl -sS --max-time 20 --cacert "${E2E_DIR}/cert.pem" -o "${E2E_DIR}/t16-stream" \
    "https://localhost:${E2E_PORT}/stream?task_id=${t16_html_id}" 2>/dev/null || true
check "stream: the model's markup arrives escaped" "no &lt;script&gt; in the stream" \
    grep -qF '&lt;script&gt;alert(' "${E2E_DIR}/t16-stream"
refute "stream: no live <script>, <img onerror> or javascript: link" "live markup in the stream" \
    grep -qE '<script>alert\(|<img src=x|<a href="javascript:' "${E2E_DIR}/t16-stream"

# --- Task ids: unguessable, listed nowhere ----------------------------------------------------------------------------

# Fifteen ids (under nginx's burst of 20 task starts per address).
t16_ids=()
for _ in $(seq 1 15); do
    api_create "e2e id sample"
    [[ -n "${TASK_ID}" ]] && t16_ids+=("${TASK_ID}")
done
assert_eq "ids: fifteen tasks created" 15 "${#t16_ids[@]}"
# 22 base64url characters = 128 bits; no two close (a counter or a timestamp would make neighbours close or
# share a long prefix).
t16_id_report="$(python3 - "${t16_ids[@]}" <<'EOF'
import base64, sys
ids = sys.argv[1:]
problems = []
values = []
for i in ids:
    if len(i) != 22:
        problems.append(f"{i}: {len(i)} characters")
        continue
    raw = base64.urlsafe_b64decode(i + "==")
    if len(raw) != 16:
        problems.append(f"{i}: {len(raw)} bytes")
    values.append(int.from_bytes(raw, "big"))
if len(set(ids)) != len(ids):
    problems.append("duplicates")
for a in range(len(ids)):
    for b in range(a + 1, len(ids)):
        prefix = 0
        while prefix < 22 and ids[a][prefix] == ids[b][prefix]:
            prefix += 1
        if prefix >= 5:
            problems.append(f"{ids[a]} and {ids[b]} share {prefix} leading characters")
for x, y in zip(values, values[1:]):
    if abs(x - y) < 2**64:
        problems.append("two consecutive ids are numerically close")
print("; ".join(problems))
EOF
)"
assert_eq "ids: 128 random bits each, no two alike or close" "" "${t16_id_report}"
http GET /api/tasks
assert_status "ids: no listing of tasks (GET /api/tasks is 405)" 405
for t16_path in '/status?json' '/metrics' '/status?full'; do
    http GET "${t16_path}"
    t16_leaked=""
    for t16_id in "${t16_ids[@]}"; do
        [[ "${HTTP_BODY}" == *"${t16_id}"* ]] && t16_leaked="${t16_id}"
    done
    assert_eq "ids: ${t16_path} shows no task id" "" "${t16_leaked}"
done
true
