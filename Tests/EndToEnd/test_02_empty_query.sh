#!/usr/bin/env bash
# shellcheck shell=bash
# Empty, blank and oversized queries, with and without htmx. Sourced by run.sh.

http POST /generate -H 'HX-Request: true' --data-urlencode 'query='
assert_status "empty query (htmx): 400" 400
assert_body_contains "empty query (htmx): says No query provided" 'No query provided'
assert_body_lacks "empty query (htmx): a fragment, not a page" '<html'

http POST /generate -H 'HX-Request: true' --data-urlencode 'query=   '
assert_status "blank query (htmx): 400" 400
assert_body_contains "blank query (htmx): says No query provided" 'No query provided'

http POST /generate -H 'HX-Request: true' --data 'other=1'
assert_status "missing query field (htmx): 400" 400
assert_body_contains "missing query field (htmx): says No query provided" 'No query provided'

http POST /generate --data-urlencode 'query='
assert_status "empty query (plain): 400" 400
assert_body_contains "empty query (plain): a whole page" '<title>Long running</title>'
assert_body_contains "empty query (plain): says No query provided" 'No query provided'

t02_big="$(head -c 40000 /dev/zero | tr '\0' 'a')"
http POST /generate -H 'HX-Request: true' --data-urlencode "query=${t02_big}"
assert_status "query over --max-query-bytes (htmx): 413" 413
true
