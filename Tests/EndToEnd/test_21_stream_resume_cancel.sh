#!/usr/bin/env bash
# shellcheck shell=bash
# Streams through nginx with curl -N: the whole text then done, resume with Last-Event-ID, deltas while the task
# runs, cancel mid-stream (the upstream request is aborted), a client that goes away, the page's HTML stream and
# the poll fallback (issue 4). Sourced by run.sh.

backend_alive || restart_backend "streams: backend running"

# Reads an event stream to its end. $1: path. $2: output file. $@ (rest): more curl arguments.
t21_stream() {
    local path="$1" out="$2"
    shift 2
    local status
    status="$(curl -sS -N --max-time 60 --cacert "${E2E_DIR}/cert.pem" "$@" -o "${out}" -D "${out}.headers" \
        -w '%{http_code}' "https://localhost:${E2E_PORT}${path}" 2>>"${E2E_DIR}/e2e.log")" || true
    cat "${out}" >>"${E2E_DIR}/responses.log"
    record_api_answer GET "${path}" "${status:-000}" "$(tr -d '\r' <"${out}.headers")" "$(cat "${out}")"
}

# Parses an event stream file into JSON: {"events": [[name, id, data]...], "text": concatenated delta text}.
# $1: the file. $2: "json" (API data) or "html" (page data, unescaped).
t21_parse() {
    python3 - "$1" "$2" <<'PY'
import html, json, sys
events, name, ident, data = [], "message", None, []
for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
    if line == "":
        if data:
            events.append([name, ident, "\n".join(data)])
        name, data = "message", []
    elif line.startswith(":"):
        continue
    else:
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event": name = value
        elif field == "data": data.append(value)
        elif field == "id": ident = value
deltas = [e for e in events if e[0] == "delta"]
if sys.argv[2] == "json":
    text = "".join(json.loads(e[2])["text"] for e in deltas)
else:
    text = "".join(html.unescape(e[2]) for e in deltas)
print(json.dumps({"events": events, "text": text, "names": [e[0] for e in events]}))
PY
}

# --- The whole stream of a finished task, then a resume from its middle -----------------------------------------
t21_prompt="e2e resume me [mock:long=30]"
api_create "${t21_prompt}"
t21_id="${TASK_ID}"
poll_api_status 30 "${t21_id}" succeeded || fail "stream replay: the task finishes" "$(last_response)"
t21_result="$(json result)"
t21_stream "/api/tasks/${t21_id}/events" "${E2E_DIR}/t21_full.out"
t21_full="$(t21_parse "${E2E_DIR}/t21_full.out" json)"
assert_eq "stream replay: the deltas make up the whole result" "${t21_result}" "$(json text <(printf '%s' "${t21_full}"))"
assert_eq "stream replay: the last event is done" "done" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["names"][-1])' "${t21_full}")"
assert_eq "stream replay: done carries the final state" "succeeded" \
    "$(python3 -c 'import json,sys; print(json.loads(json.loads(sys.argv[1])["events"][-1][2])["status"])' "${t21_full}")"

# Resume from offset 20 (as a browser would after a drop): exactly the missing part, no second upstream call.
t21_requests_before="$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])')"
t21_stream "/api/tasks/${t21_id}/events" "${E2E_DIR}/t21_resume.out" -H 'Last-Event-ID: 20'
t21_resumed="$(t21_parse "${E2E_DIR}/t21_resume.out" json)"
t21_expected="$(python3 -c 'import sys; print(sys.argv[1][20:])' "${t21_result}")"
assert_eq "resume: Last-Event-ID 20 gives exactly the text after offset 20" "${t21_expected}" "$(json text <(printf '%s' "${t21_resumed}"))"
t21_requests_after="$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])')"
assert_eq "resume: no second upstream call" "${t21_requests_before}" "${t21_requests_after}"
# A client that has more of this run than the store (a Redis failover lost writes it had seen) starts again from
# the store's text after a reset, never a splice.
t21_stream "/api/tasks/${t21_id}/events" "${E2E_DIR}/t21_ahead.out" -H 'Last-Event-ID: 1-1000000'
t21_ahead="$(t21_parse "${E2E_DIR}/t21_ahead.out" json)"
assert_eq "resume: an offset past the stored text gives reset, then the whole text" "reset ${t21_result}" \
    "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["names"][0], d["text"])' "${t21_ahead}")"
http GET "/api/tasks/${t21_id}/events" -H 'Last-Event-ID: nope'
assert_json_error "resume: a malformed Last-Event-ID is 400" 400

# --- Deltas arrive while the task runs ----------------------------------------------------------------------------
api_create "e2e live stream [mock:latency=6] [mock:long=40]"
t21_live="${TASK_ID}"
t21_stream "/api/tasks/${t21_live}/events" "${E2E_DIR}/t21_live.out" &
t21_curl=$!
t21_three_deltas() { test "$(grep -c '^event: delta' "${E2E_DIR}/t21_live.out" 2>/dev/null)" -ge 3; }
if wait_until_alive "${t21_curl}" 30 t21_three_deltas; then
    http GET "/api/tasks/${t21_live}"
    assert_eq "live stream: 3 deltas arrived while the task still runs" "running" "$(json status)"
    # The poll fallback answers while a stream is open: the pending fragment with the partial text.
    http GET "/check?task_id=${t21_live}" -H 'HX-Request: true'
    assert_status "poll fallback: check answers during the stream" 200
    assert_body_contains "poll fallback: the partial text" 'Mock reply to:'
    assert_body_contains "poll fallback: still polling" 'hx-trigger'
else
    fail "live stream: 3 deltas arrived while the task still runs" "$(head -c 300 "${E2E_DIR}/t21_live.out" | tr '\n' ' ')"
fi
wait_until 60 process_gone "${t21_curl}" || kill "${t21_curl}" 2>/dev/null || true
wait "${t21_curl}" 2>/dev/null || true
t21_parsed="$(t21_parse "${E2E_DIR}/t21_live.out" json)"
http GET "/api/tasks/${t21_live}"
assert_eq "live stream: the streamed text is the result" "$(json result)" "$(json text <(printf '%s' "${t21_parsed}"))"
check "live stream: many deltas, not one block at the end" "too few deltas" \
    test "$(grep -c '^event: delta' "${E2E_DIR}/t21_live.out")" -ge 10

# --- The page's stream: escaped HTML ------------------------------------------------------------------------------
api_create "e2e page stream [mock:html]"
t21_page="${TASK_ID}"
t21_stream "/stream?task_id=${t21_page}" "${E2E_DIR}/t21_page.out"
assert_file_lacks "page stream: no raw <script> from the model" '<script>' "${E2E_DIR}/t21_page.out"
check "page stream: the script arrives escaped" "no &lt;script&gt;" grep -q '&lt;script&gt;' "${E2E_DIR}/t21_page.out"
check "page stream: done carries the final fragment" "no final fragment" grep -q '^data: <div id="task-.*task-succeeded' "${E2E_DIR}/t21_page.out"
http GET "/stream?task_id=AAAAAAAAAAAAAAAAAAAAAA"
assert_status "page stream: unknown id is 404" 404

# --- Cancel mid-stream --------------------------------------------------------------------------------------------
t21_aborted_before="$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["streams_aborted"])')"
api_create "e2e cancel me [mock:latency=30] [mock:long=200]"
t21_cancel="${TASK_ID}"
t21_stream "/api/tasks/${t21_cancel}/events" "${E2E_DIR}/t21_cancel.out" &
t21_curl=$!
if wait_until_alive "${t21_curl}" 30 grep -q '^event: delta' "${E2E_DIR}/t21_cancel.out"; then
    http DELETE "/api/tasks/${t21_cancel}"
    assert_status "cancel: DELETE answers 200" 200
    assert_eq "cancel: the answer says it was requested" "requested" "$(json cancel)"
    if wait_until 10 process_gone "${t21_curl}"; then
        pass "cancel: the stream ends"
    else
        fail "cancel: the stream ends" "still open after 10 s"
        kill "${t21_curl}" 2>/dev/null || true
    fi
    wait "${t21_curl}" 2>/dev/null || true
    check "cancel: the stream's done says cancelled" "$(tail -c 300 "${E2E_DIR}/t21_cancel.out" | tr '\n' ' ')" \
        grep -q '"status":"cancelled"' "${E2E_DIR}/t21_cancel.out"
    http GET "/api/tasks/${t21_cancel}"
    assert_eq "cancel: the task is cancelled" "cancelled" "$(json status)"
    t21_aborted() {
        test "$(curl -s "http://127.0.0.1:${MOCK_PORT}/mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["streams_aborted"])')" -gt "${t21_aborted_before}"
    }
    if wait_until 5 t21_aborted; then
        pass "cancel: the upstream request was aborted (the mock saw the connection close)"
    else
        fail "cancel: the upstream request was aborted (the mock saw the connection close)" "streams_aborted did not grow"
    fi
    http DELETE "/api/tasks/${t21_cancel}"
    assert_eq "cancel twice: harmless, says already finished" "already_finished" "$(json cancel)"
    http POST "/cancel?task_id=${t21_cancel}" -H 'HX-Request: true'
    assert_status "cancel (page): answers 200" 200
    assert_body_contains "cancel (page): the cancelled fragment" 'task-cancelled'
else
    fail "cancel: a delta arrives before the cancel" "$(head -c 300 "${E2E_DIR}/t21_cancel.out" | tr '\n' ' ')"
    kill "${t21_curl}" 2>/dev/null || true
fi

# A queued task never starts.
restart_backend "cancel queued: backend restarts with --max-in-flight 1" --max-in-flight 1
api_create "e2e busy slot [mock:latency=30]"
t21_busy="${TASK_ID}"
api_create "e2e never starts"
t21_queued="${TASK_ID}"
http DELETE "/api/tasks/${t21_queued}"
assert_eq "cancel queued: cancelled at once" "cancelled" "$(json status)"
check "cancel queued: it never started" "it has started_at" test -z "$(json started_at)"
http POST "/cancel?task_id=${t21_busy}"
assert_status "cancel (no JavaScript): 303 back to the task page" 303

# --- A client that goes away --------------------------------------------------------------------------------------
restart_backend "client gone: backend back to defaults"
api_create "e2e client leaves [mock:latency=4] [mock:long=40]"
t21_left="${TASK_ID}"
# curl itself in the background (not a subshell around it), so that the kill below reaches it.
curl -sS -N --max-time 60 --cacert "${E2E_DIR}/cert.pem" -o "${E2E_DIR}/t21_left.out" \
    "https://localhost:${E2E_PORT}/api/tasks/${t21_left}/events" 2>>"${E2E_DIR}/e2e.log" &
t21_curl=$!
wait_until_alive "${t21_curl}" 30 grep -q '^event: delta' "${E2E_DIR}/t21_left.out" || true
kill "${t21_curl}" 2>/dev/null || true
wait "${t21_curl}" 2>/dev/null || true
t21_gone() { grep -q "stream.end=client gone.*task.id=${t21_left}\|task.id=${t21_left}.*stream.end=client gone" "${E2E_DIR}/backend.log"; }
if wait_until 20 t21_gone; then
    pass "client gone: the backend notices and frees the stream"
else
    fail "client gone: the backend notices and frees the stream" "no 'client gone' line for the task in backend.log"
fi
if poll_api_status 30 "${t21_left}" succeeded; then
    pass "client gone: the task itself continues to its result"
else
    fail "client gone: the task itself continues to its result" "$(last_response)"
fi
true
