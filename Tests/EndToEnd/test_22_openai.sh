#!/usr/bin/env bash
# shellcheck shell=bash
# The second provider: OpenAI-compatible chat completions (Ollama, vLLM, llama.cpp) through the mock, end to end,
# including a retried overload, a 401 and the usage and stop reason (issue 3). Sourced by run.sh.

# The key of this provider comes from OPENAI_API_KEY (the mock checks the Bearer header).
export OPENAI_API_KEY="${E2E_KEY}"
restart_backend "openai: backend restarts with --provider openai" --provider openai \
    --base-url "http://127.0.0.1:${MOCK_PORT}" --model e2e-local-model

t22_prompt="e2e openai hello [mock:long=5]"
api_create "${t22_prompt}"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "openai: succeeded" "succeeded" "$(json status)"
assert_eq "openai: the mock's exact reply" "Mock reply to: ${t22_prompt} word1 word2 word3 word4 word5" "$(json result)"
assert_eq "openai: stop reason (finish_reason)" "stop" "$(json stop_reason)"
check "openai: usage from stream_options.include_usage" "no usage: $(last_response)" test -n "$(json usage.output_tokens)"
assert_eq "openai: the model" "e2e-local-model" "$(json model)"

api_create "e2e openai [mock:529x1] overloaded once"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "openai 529 once: retried and succeeded" "succeeded" "$(json status)"
assert_eq "openai 529 once: 2 attempts" "2" "$(json attempts)"

api_create "e2e openai [mock:401] bad key"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "openai 401: failed" "failed" "$(json status)"
assert_eq "openai 401: one attempt" "1" "$(json error.attempts)"
check "openai 401: a clear message" "no message" test -n "$(json error.message)"
assert_body_lacks "openai 401: no key in the answer" "${E2E_KEY}"

api_create "e2e openai [mock:error-event] mid-stream error [mock:long=20]"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "openai mid-stream error: failed" "failed" "$(json status)"

api_create "e2e openai [mock:max-tokens] cut"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "openai max tokens: finish_reason length" "length" "$(json stop_reason)"

unset OPENAI_API_KEY
restart_backend "openai: backend back to the anthropic provider"
true
