#!/usr/bin/env bash
# shellcheck shell=bash
# The OpenAPI document (issue 17, part 2): the served JSON is openapi.yaml, the embedded copy is up to date, and
# schemathesis's property-based checks pass against the live server through nginx (no 5xx, every status, content
# type, body and header as documented), bounded in time. Sourced by run.sh.
#
# For the schemathesis run, nginx's per-address rate limit on task creation is raised (it would answer most of the
# generated requests 429, which the document allows but which tests nothing else), and put back afterwards; the
# backend runs with the suite's flags (no --max-tasks-per-client). Its tasks use the mock LLM.

backend_alive || restart_backend "openapi: backend running"

if ensure_openapi_tools >>"${E2E_DIR}/e2e.log" 2>&1; then
    pass "openapi: the pinned OpenAPI tools are installed"
else
    fail "openapi: the pinned OpenAPI tools are installed" "ensure_openapi_tools failed: see e2e.log"
fi
t70_python="$(openapi_python)"

check "openapi: Sources/LonghaulLLM/OpenAPIDocument.swift is generated from openapi.yaml" \
    "out of date: run scripts/openapi" "${LONGHAUL_ROOT}/scripts/openapi" --check

http GET /api/openapi.json
assert_status "openapi: GET /api/openapi.json is 200" 200
assert_header_match "openapi: served as JSON" Content-Type '^application/json'
t70_same="$("${t70_python}" - "${LONGHAUL_ROOT}/openapi.yaml" "${E2E_DIR}/last.body" <<'PY' 2>&1
import json, sys
import yaml
source = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
served = json.load(open(sys.argv[2], encoding="utf-8"))
print("same" if source == served else "different")
PY
)"
assert_eq "openapi: the served document is openapi.yaml" "same" "${t70_same}"

# --- schemathesis ---------------------------------------------------------------------------------------------------

# Raises the task-creation rate limit in the rendered nginx.conf. $1: the rate (e.g. 10r/s).
t70_nginx_rate() {
    sed -i -E "s|(zone=longhaul_generate:[^ ]+ rate=)[0-9]+r/s|\1$1|" "${E2E_DIR}/nginx.conf" &&
        reload_nginx "${E2E_DIR}"
}

t70_rate="$(grep -oE 'zone=longhaul_generate:[^ ]+ rate=[0-9]+r/s' "${E2E_DIR}/nginx.conf" | grep -oE '[0-9]+r/s$')"
check "openapi: nginx reloads with a high task-creation rate for schemathesis" "reload failed" t70_nginx_rate 100000r/s

t70_report="${E2E_DIR}/schemathesis"
mkdir -p "${t70_report}"
t70_rc=0
# Bounded: at most 40 examples per operation and phase, E2E_SCHEMATHESIS_TIME (default 90) seconds in all (fuzzing and
# stateful testing repeat until it is spent), each request 20 s, the whole run that plus 150 s (timeout).
# --tls-verify: the suite's own certificate.
t70_time="${E2E_SCHEMATHESIS_TIME:-90}"
t70_checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
t70_checks+=",response_headers_conformance"
(
    cd "${t70_report}" &&
        timeout $((t70_time + 150)) "$(dirname "${t70_python}")/st" run "${LONGHAUL_ROOT}/openapi.yaml" \
            --url "https://localhost:${E2E_PORT}" --tls-verify "${E2E_DIR}/cert.pem" \
            --checks "${t70_checks}" \
            --phases examples,coverage,fuzzing,stateful --max-examples 40 --max-time "${t70_time}" \
            --request-timeout 20 --max-response-time 10 --workers 2 --seed 17 \
            --suppress-health-check too_slow,filter_too_much \
            --report junit --report-dir "${t70_report}" --no-color
) >"${t70_report}/output.log" 2>&1 || t70_rc=$?
if [[ ${t70_rc} -eq 0 ]]; then
    pass "openapi: schemathesis finds no failure ($(grep -aoE '[0-9]+ generated, [0-9]+ passed' "${t70_report}/output.log" | tail -n 1))"
else
    fail "openapi: schemathesis finds no failure" \
        "exit ${t70_rc}; $(grep -aE '^(_+ |[0-9]+\. |- |[A-Z][a-z]+ )' "${t70_report}/output.log" | head -n 12 | tr '\n' ' ')"
    tail -n 80 "${t70_report}/output.log" >>"${E2E_DIR}/e2e.log"
fi
check "openapi: the backend survived schemathesis" "the backend died" backend_alive

check "openapi: nginx's task-creation rate is back to ${t70_rate}" "reload failed" t70_nginx_rate "${t70_rate}"
true
