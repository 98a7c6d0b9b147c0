#!/usr/bin/env bash
# shellcheck shell=bash
# LLM gateways in front of the providers (issue 17, part 3): the mock's gateway modes, each through nginx with both
# wire formats where the mode applies. Every task must end succeeded with exactly the mock's text. Sourced by run.sh.

backend_alive || restart_backend "gateways: backend running"

# The words [mock:long=12] appends to a reply.
t24_words=" word1 word2 word3 word4 word5 word6 word7 word8 word9 word10 word11 word12"

# Runs one prompt (with [mock:long=12] added) to its end and checks it succeeded with exactly the mock's reply.
# $1: provider label. $2: the gateway mode's markers.
t24_expect_reply() {
    local label="$1" prompt="e2e gateway $2 [mock:long=12]"
    api_create "${prompt}"
    if ! poll_api_status 30 "${TASK_ID}" succeeded failed cancelled; then
        fail "gateways ${label}: '${prompt}' finishes" "$(last_response)"
        return
    fi
    assert_eq "gateways ${label}: '${prompt}' succeeded" "succeeded" "$(json status)"
    assert_eq "gateways ${label}: '${prompt}' gives exactly the mock's text" "Mock reply to: ${prompt}${t24_words}" "$(json result)"
    assert_eq "gateways ${label}: '${prompt}' in one attempt" "1" "$(json attempts)"
}

t24_anthropic_modes=(
    "[mock:gateway-json]" "[mock:no-event-lines]" "[mock:unknown-events]" "[mock:done-anthropic]" "[mock:crlf]"
    "[mock:cr]" "[mock:unknown-events] [mock:no-event-lines] [mock:crlf] [mock:done-anthropic]"
)
for t24_mode in "${t24_anthropic_modes[@]}"; do
    t24_expect_reply anthropic "${t24_mode}"
done

# A whole Message still gives the facts a stream gives.
api_create "e2e gateway facts [mock:gateway-json] [mock:max-tokens]"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "gateways anthropic: a whole Message's stop_reason" "max_tokens" "$(json stop_reason)"
check "gateways anthropic: a whole Message's usage" "no usage: $(last_response)" test -n "$(json usage.output_tokens)"
check "gateways anthropic: a whole Message's request id" "no request id" test -n "$(json request_id)"

# A gateway's whole answer that is cut off is retried (nothing was delivered yet) and then succeeds.
t24_prompt="e2e gateway cut [mock:gateway-json] [mock:disconnectx1]"
api_create "${t24_prompt}"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "gateways anthropic: a cut JSON answer is retried" "succeeded" "$(json status)"
assert_eq "gateways anthropic: a cut JSON answer, then the whole text" "Mock reply to: ${t24_prompt}" "$(json result)"
assert_eq "gateways anthropic: a cut JSON answer takes 2 attempts" "2" "$(json attempts)"

export OPENAI_API_KEY="${E2E_KEY}"
restart_backend "gateways: backend restarts with --provider openai" --provider openai \
    --base-url "http://127.0.0.1:${MOCK_PORT}" --model e2e-gateway-model

t24_openai_modes=(
    "[mock:gateway-json]" "[mock:unknown-events]" "[mock:crlf]" "[mock:cr]" "[mock:usage-empty-choices]"
    "[mock:unknown-events] [mock:crlf] [mock:usage-empty-choices]"
)
for t24_mode in "${t24_openai_modes[@]}"; do
    t24_expect_reply openai "${t24_mode}"
done

api_create "e2e gateway facts [mock:gateway-json] [mock:max-tokens]"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
assert_eq "gateways openai: a whole completion's finish_reason" "length" "$(json stop_reason)"
check "gateways openai: a whole completion's usage" "no usage: $(last_response)" test -n "$(json usage.output_tokens)"

api_create "e2e gateway usage [mock:usage-empty-choices]"
poll_api_status 30 "${TASK_ID}" succeeded failed || true
check "gateways openai: usage read from the chunk with empty choices" "no usage: $(last_response)" \
    test -n "$(json usage.input_tokens)"

unset OPENAI_API_KEY
restart_backend "gateways: backend back to the anthropic provider"
true
