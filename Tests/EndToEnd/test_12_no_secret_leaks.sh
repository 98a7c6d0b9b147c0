#!/usr/bin/env bash
# shellcheck shell=bash
# The API key never appears in any answer or log. Sourced by run.sh.

for t11_file in responses.log backend.log access.log error.log; do
    assert_file_lacks "secrets: no API key in ${t11_file}" "sk-e2e-SECRET" "${E2E_DIR}/${t11_file}"
done
true
