#!/usr/bin/env bash
# shellcheck shell=bash
# The API key never appears in any answer or log: checked near the end, after the failure, fault and restart
# tests have written their share. Sourced by run.sh.

backend_alive || restart_backend "secrets: backend running"
for t98_path in '/status?json' /status /metrics /ping; do
    http GET "${t98_path}"
    assert_body_lacks "secrets: no API key in ${t98_path}" "sk-e2e-SECRET"
done
# The key comes from the environment, never the command line (which every local user can read in ps).
t98_pid="$(saved_pid "${E2E_DIR}" backend)"
refute "secrets: no API key on the backend's command line" "the key is in /proc/${t98_pid}/cmdline" \
    grep -qF "sk-e2e-SECRET" "/proc/${t98_pid}/cmdline"
for t98_file in responses.log backend.log access.log error.log; do
    assert_file_lacks "secrets: no API key in ${t98_file}" "sk-e2e-SECRET" "${E2E_DIR}/${t98_file}"
done
true
