#!/usr/bin/env bash
# shellcheck shell=bash
# The API key comes from the environment or a .env file, never from a flag; without one the backend refuses to
# start with a clear message. Sourced by run.sh.

t14_dir="${E2E_DIR}/envfile"
mkdir -p "${t14_dir}"

# No key anywhere: a clear refusal, no socket.
t14_out="$(cd "${t14_dir}" && env -u ANTHROPIC_API_KEY -u LONGHAUL_API_KEY "${E2E_BIN}" --socket "${t14_dir}/a.sock" 2>&1)" &&
    t14_rc=0 || t14_rc=$?
check "env file: without a key the backend refuses to start" "exit code ${t14_rc}" test "${t14_rc}" -ne 0
check "env file: and says how to set it" "got: ${t14_out}" grep -q 'ANTHROPIC_API_KEY' <<<"${t14_out}"

# The key in .env (quoted, with a comment and an export prefix): the backend starts.
printf '# Longhaul settings\nexport ANTHROPIC_API_KEY="%s"\nLONGHAUL_SOCKET_MODE=0600\n' "${E2E_KEY}" >"${t14_dir}/.env"
(cd "${t14_dir}" && exec env -u ANTHROPIC_API_KEY -u LONGHAUL_API_KEY "${E2E_BIN}" --socket "${t14_dir}/b.sock" \
    >"${t14_dir}/b.log" 2>&1) &
t14_pid=$!
if wait_until_alive "${t14_pid}" 20 test -S "${t14_dir}/b.sock"; then
    pass "env file: the key from .env is used (the backend starts)"
    assert_eq "env file: other settings come from it too (socket mode 0600)" "600" "$(stat -c '%a' "${t14_dir}/b.sock")"
else
    fail "env file: the key from .env is used (the backend starts)" "$(tail -n 3 "${t14_dir}/b.log")"
fi
kill -TERM "${t14_pid}" 2>/dev/null || true
wait "${t14_pid}" 2>/dev/null || true
assert_file_lacks "env file: the key is not logged" "${E2E_KEY}" "${t14_dir}/b.log"
true
