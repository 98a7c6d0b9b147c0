#!/usr/bin/env bash
# shellcheck shell=bash
# The index page, its static assets (served by nginx) and the headers on everything. Sourced by run.sh.

t01_csp="default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

# Checks the security headers of the last answer. $1: what was fetched.
t01_security_headers() {
    assert_header "headers on $1: Content-Security-Policy" Content-Security-Policy "${t01_csp}"
    assert_header "headers on $1: X-Content-Type-Options nosniff" X-Content-Type-Options nosniff
    assert_header "headers on $1: Referrer-Policy no-referrer" Referrer-Policy no-referrer
    assert_header "headers on $1: X-Frame-Options DENY" X-Frame-Options DENY
}

http GET /
assert_status "index: GET / is 200" 200
assert_header_match "index: text/html" Content-Type '^text/html'
assert_body_contains "index: title is Long running" '<title>Long running</title>'
t01_form="$(tr '\n' ' ' <<<"${HTTP_BODY}" | grep -oE '<form[^>]*id="query-form"[^>]*>' | head -n 1 || true)"
check "index: the form #query-form" "no <form id=\"query-form\">" test -n "${t01_form}"
for t01_attr in 'hx-post="/generate"' 'hx-target="#result"' 'method="post"' 'action="/generate"'; do
    check "index: the form has ${t01_attr}" "form tag: ${t01_form}" grep -qF -- "${t01_attr}" <<<"${t01_form}"
done
assert_match "index: text input named query" '<input[^>]*id="query"[^>]*name="query"' "${HTTP_BODY//$'\n'/ }"
assert_match "index: a Submit button" '<button[^>]*type="submit"[^>]*>Submit</button>' "${HTTP_BODY//$'\n'/ }"
assert_body_contains "index: empty #result below" '<div id="result"'
assert_body_contains "index: links app.css" 'href="/static/app.css"'
assert_body_contains "index: loads htmx 2 from static" 'src="/static/vendor/htmx-2.min.js"'
assert_body_contains "index: loads app.js" 'src="/static/app.js"'
refute "index: no inline script (CSP)" "a <script> element has content" grep -qE '<script[^>]*>[^<]' <<<"${HTTP_BODY}"
refute "index: no inline style (CSP)" "a style attribute or <style> element" \
    grep -qiE '<style|[[:space:]]style=' <<<"${HTTP_BODY}"
t01_security_headers "/"
assert_header "index: Server header has no version" Server nginx

http GET /static/vendor/htmx-2.min.js
assert_status "static: htmx-2.min.js is 200" 200
assert_eq "static: htmx-2.min.js has the pinned checksum" "${HTMX_JS_SHA256}" "$(sha256_of "${E2E_DIR}/last.body")"
assert_header_match "static: htmx is served as JavaScript" Content-Type 'javascript'
assert_header_match "static: vendor files are cached long" Cache-Control 'max-age=([0-9]{7,})'
t01_security_headers "htmx-2.min.js"

http GET /static/vendor/ext/hx-sse-2.min.js
assert_eq "static: hx-sse-2.min.js has the pinned checksum" "${HTMX_SSE_SHA256}" "$(sha256_of "${E2E_DIR}/last.body")"

http GET /static/app.css
assert_status "static: app.css is 200" 200
assert_header_match "static: app.css is text/css" Content-Type '^text/css'
assert_body_contains "static: app.css styles .result-text" '.result-text'
t01_security_headers "app.css"

http GET /static/app.js
assert_status "static: app.js is 200" 200
assert_header_match "static: app.js is JavaScript" Content-Type 'javascript'
assert_body_contains "static: app.js resets the form after htmx:afterRequest" 'htmx:afterRequest'

http GET /static/no-such-file.css
assert_status "static: a missing file is 404 from nginx" 404
t01_security_headers "a 404"

t01_proto="$(curl -sS -o /dev/null --max-time 10 --cacert "${E2E_DIR}/cert.pem" -w '%{http_version}' \
    "https://localhost:${E2E_PORT}/static/app.css" 2>/dev/null || true)"
assert_eq "tls: HTTP/2 is negotiated" "2" "${t01_proto}"
t01_tls12="$(curl -sS -o /dev/null --max-time 10 --cacert "${E2E_DIR}/cert.pem" --tlsv1.2 --tls-max 1.2 \
    -w '%{http_code}' "https://localhost:${E2E_PORT}/static/app.css" 2>/dev/null || true)"
assert_eq "tls: TLS 1.2 works" "200" "${t01_tls12}"
t01_tls11="$(curl -sS -o /dev/null --max-time 10 --cacert "${E2E_DIR}/cert.pem" --tlsv1.0 --tls-max 1.1 \
    -w '%{http_code}' "https://localhost:${E2E_PORT}/static/app.css" 2>/dev/null || true)"
check "tls: TLS 1.1 is refused" "got HTTP ${t01_tls11}" test "${t01_tls11:-000}" = "000"
t01_plain="$(curl -sS -o /dev/null --max-time 10 -w '%{http_code}' \
    "https://localhost:${E2E_PORT}/static/app.css" 2>/dev/null || true)"
check "tls: the certificate is verified (fails without --cacert)" "curl accepted it without the CA" \
    test "${t01_plain:-000}" = "000"
true
