#!/usr/bin/env bash
#
# Tests/EndToEnd/run.sh: Longhaul's end-to-end suite. One stack in a temporary directory (the mock LLM, the
# backend under spawn-fcgi on a unix socket, nginx over TLS on a free port), then every test_NN_*.sh in order,
# each sourced into this shell, then one check that every /api/ answer the tests saw conforms to openapi.yaml.
# Prints `PASS name` / `FAIL name: reason` lines and ends with `N passed, N failed`.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: Tests/EndToEnd/run.sh [-b BINARY] [-f REGEX] [-x REGEX] [-k] [-h]

  -b BINARY  the longhaul binary (default: $LONGHAUL_BIN, else .build/debug/longhaul)
  -f REGEX   run only the test files whose name matches REGEX (e.g. -f 'api|queue')
  -x REGEX   skip the test files whose name matches REGEX
  -k         keep the temporary directory (logs, configs) and print where it is
  -h         this help

Needs nginx, spawn-fcgi, curl, openssl and python3 (scripts/lib.sh ensure_packages installs them),
static/vendor/ (ensure_htmx) and the pinned OpenAPI tools (ensure_openapi_tools; installed when missing). Exits non-zero when a check failed.
EOF
}

HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=Tests/EndToEnd/lib.sh
source "${HERE}/lib.sh"

E2E_BIN="${LONGHAUL_BIN:-${LONGHAUL_ROOT}/.build/debug/longhaul}"
filter=""
exclude=""
keep=0
while getopts ":b:f:x:kh" opt; do
    case "${opt}" in
        b) E2E_BIN="${OPTARG}" ;;
        f) filter="${OPTARG}" ;;
        x) exclude="${OPTARG}" ;;
        k) keep=1 ;;
        h)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 64
            ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || fatal "unexpected argument: $1"
E2E_BIN="$(cd "$(dirname "${E2E_BIN}")" 2>/dev/null && pwd -P)/$(basename "${E2E_BIN}")" ||
    fatal "no such binary: ${E2E_BIN}"

# The backend must see only the settings this suite gives it.
while IFS= read -r var; do
    unset "${var}"
done < <(compgen -e | grep -E '^(LONGHAUL_|ANTHROPIC_)' || true)

E2E_DIR="$(mktemp -d "${TMPDIR:-/tmp}/longhaul-e2e.XXXXXX")"
E2E_DIR="$(cd "${E2E_DIR}" && pwd -P)"
E2E_SOCKET="${E2E_DIR}/longhaul.sock"
E2E_PORT="$(free_port)"
E2E_KEY="sk-e2e-SECRET-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
E2E_BACKEND_FLAGS=(--log-level debug)
# Commands cleanup runs before it stops the stack: a test that starts processes of its own (test_31 runs
# scripts/run) adds the function that stops them, so that they go even when the run ends early.
E2E_CLEANUP_HOOKS=()

# Runs on any exit: stop the stack, show the logs' ends when something failed, remove the directory.
# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local hook
    for hook in "${E2E_CLEANUP_HOOKS[@]}"; do
        "${hook}" || true
    done
    stop_all "${E2E_DIR}"
    if [[ ${E2E_FAILED} -gt 0 || ${rc} -ne 0 ]]; then
        local file
        for file in backend.log error.log mock.log e2e.log; do
            if [[ -s "${E2E_DIR}/${file}" ]]; then
                printf -- '---- last lines of %s ----\n' "${file}" >&2
                tail -n 25 "${E2E_DIR}/${file}" >&2
            fi
        done
    fi
    if [[ ${keep} -eq 1 ]]; then
        log "kept ${E2E_DIR}"
    else
        rm -rf "${E2E_DIR}"
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the summary and exits.
finish() {
    printf '\n'
    if [[ ${E2E_FAILED} -gt 0 ]]; then
        printf 'Failed checks:\n'
        printf '  %s\n' "${E2E_FAILURES[@]}"
    fi
    printf '%d passed, %d failed\n' "${E2E_PASSED}" "${E2E_FAILED}"
    if [[ ${E2E_FAILED} -gt 0 ]]; then
        exit 1
    fi
    exit 0
}

log "end-to-end run in ${E2E_DIR} (https://localhost:${E2E_PORT}/, binary ${E2E_BIN})"

# --- The stack ------------------------------------------------------------------------------------------------------

make_dev_cert "${E2E_DIR}" 2>>"${E2E_DIR}/e2e.log" || {
    fail "setup: development certificate" "openssl failed"
    finish
}
if MOCK_LATENCY=0.3 start_mock "${E2E_DIR}" 2>>"${E2E_DIR}/e2e.log"; then
    pass "setup: mock LLM listens"
else
    fail "setup: mock LLM listens" "see mock.log"
    finish
fi
export ANTHROPIC_BASE_URL="http://127.0.0.1:${MOCK_PORT}"
export ANTHROPIC_API_KEY="${E2E_KEY}"

if start_backend "${E2E_DIR}" "${E2E_SOCKET}" "${E2E_BIN}" "${E2E_BACKEND_FLAGS[@]}" 2>>"${E2E_DIR}/e2e.log"; then
    pass "setup: backend starts under spawn-fcgi"
else
    fail "setup: backend starts under spawn-fcgi" "$(tail -n 3 "${E2E_DIR}/backend.log" 2>/dev/null || true)"
fi

if render_nginx "${E2E_DIR}" "${E2E_PORT}" "${E2E_SOCKET}" 2>>"${E2E_DIR}/e2e.log" &&
    start_nginx "${E2E_DIR}" 2>>"${E2E_DIR}/e2e.log"; then
    pass "setup: nginx -t accepts the config and nginx serves TLS"
else
    fail "setup: nginx -t accepts the config and nginx serves TLS" "$(tail -n 5 "${E2E_DIR}/e2e.log")"
    finish
fi

# --- The tests ------------------------------------------------------------------------------------------------------

for test_file in "${HERE}"/test_[0-9][0-9]_*.sh; do
    test_name="$(basename "${test_file}" .sh)"
    if [[ -n "${filter}" ]] && ! [[ "${test_name}" =~ ${filter} ]]; then
        continue
    fi
    if [[ -n "${exclude}" && "${test_name}" =~ ${exclude} ]]; then
        continue
    fi
    printf '\n== %s\n' "${test_name}"
    # Sourced as part of an AND-OR list, errexit is off inside: a failing command does not end the run, and the
    # assertions report what went wrong.
    # shellcheck disable=SC1090
    source "${test_file}" || true
done

# Every answer under /api/ the tests saw, checked against openapi.yaml.
printf '\n== openapi conformance\n'
check_api_answers

finish
