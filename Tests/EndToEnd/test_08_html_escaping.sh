#!/usr/bin/env bash
# shellcheck shell=bash
# Markup in the model's reply, or in the query, arrives escaped. Sourced by run.sh.

t08_query="e2e [mock:html] escape me"
t08_reply="Mock reply to: ${t08_query}"' <script>alert("xss")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">link</a>'

htmx_generate "${t08_query}"
t08_id="${TASK_ID}"
if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${t08_id}" -H 'HX-Request: true'; then
    pass "html reply: the result arrives"
else
    fail "html reply: the result arrives" "$(last_response)"
fi
assert_body_contains "html reply: <script> arrives escaped" '&lt;script&gt;alert('
assert_body_lacks "html reply: no live <script>" '<script>alert('
assert_body_lacks "html reply: no live <img onerror>" '<img src=x'
assert_body_lacks "html reply: no live javascript: link" '<a href="javascript:'

http GET "/task?task_id=${t08_id}"
assert_body_contains "html reply (page): escaped" '&lt;script&gt;alert('
assert_body_lacks "html reply (page): no live <script>" '<script>alert('

http GET "/api/tasks/${t08_id}"
assert_eq "html reply (api): the exact text, unescaped JSON string" "${t08_reply}" "$(json result)"

htmx_generate '<b>e2e bold</b>'
if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${TASK_ID}" -H 'HX-Request: true'; then
    pass "html query: the result arrives"
else
    fail "html query: the result arrives" "$(last_response)"
fi
assert_body_contains "html query: echoed escaped" 'Mock reply to: &lt;b&gt;e2e bold&lt;/b&gt;'
assert_body_lacks "html query: no live markup" '<b>e2e bold'
true
