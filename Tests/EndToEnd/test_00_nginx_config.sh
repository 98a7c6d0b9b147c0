#!/usr/bin/env bash
# shellcheck shell=bash
# The production template renders and passes `nginx -t` (with the test certificate in place of Let's Encrypt's);
# the development config listens on loopback only and reaches the backend by a unix socket. Sourced by run.sh.

t00_prod="${E2E_DIR}/nginx-prod"
if "${LONGHAUL_ROOT}/scripts/render-nginx-prod" --server-name longhaul.example --socket "${E2E_SOCKET}" \
    --static-root "${LONGHAUL_ROOT}/static" --cert "${E2E_DIR}/cert.pem" --key "${E2E_DIR}/key.pem" \
    --log-dir "${t00_prod}" --out "${t00_prod}" >"${E2E_DIR}/render-prod.log" 2>&1; then
    pass "nginx prod: scripts/render-nginx-prod renders the template"
else
    fail "nginx prod: scripts/render-nginx-prod renders the template" "$(tail -n 3 "${E2E_DIR}/render-prod.log")"
fi

# A minimal nginx.conf around the site, as Debian's /etc/nginx/nginx.conf would include it.
cp "$(nginx_conf_dir)/fastcgi_params" "$(nginx_conf_dir)/mime.types" "${t00_prod}/" 2>/dev/null || true
mkdir -p "${t00_prod}/tmp"
cat >"${t00_prod}/nginx.conf" <<CONF
pid ${t00_prod}/nginx.pid;
error_log ${t00_prod}/error.log;
events { worker_connections 64; }
http {
    include mime.types;
    client_body_temp_path ${t00_prod}/tmp/client_body;
    fastcgi_temp_path ${t00_prod}/tmp/fastcgi;
    proxy_temp_path ${t00_prod}/tmp/proxy;
    uwsgi_temp_path ${t00_prod}/tmp/uwsgi;
    scgi_temp_path ${t00_prod}/tmp/scgi;
    include sites-available/longhaul.conf;
}
CONF
if nginx -t -q -p "${t00_prod}/" -c "${t00_prod}/nginx.conf" -e "${t00_prod}/error.log" \
    >"${t00_prod}/nginx-t.log" 2>&1; then
    pass "nginx prod: nginx -t accepts the production config"
else
    fail "nginx prod: nginx -t accepts the production config" "$(tail -n 3 "${t00_prod}/nginx-t.log")"
fi
t00_site="$(cat "${t00_prod}/sites-available/longhaul.conf" 2>/dev/null || true)"
check "nginx prod: HTTP redirects to HTTPS" "no 301 to https" grep -q 'return 301 https://' <<<"${t00_site}"
check "nginx prod: HSTS is sent" "no longhaul-hsts.conf include" grep -q 'longhaul-hsts.conf' <<<"${t00_site}"

t00_listen="$(grep -E '^[[:space:]]*listen' "${E2E_DIR}/nginx.conf" || true)"
refute "nginx dev: listens on loopback only" "${t00_listen//$'\n'/ }" \
    grep -vqE 'listen (127\.0\.0\.1|\[::1\]):' <<<"${t00_listen}"
check "nginx dev: the backend is a unix socket" "the upstream is not unix:${E2E_SOCKET}" \
    grep -qF "server unix:${E2E_SOCKET};" "${E2E_DIR}/nginx.conf"
refute "nginx dev: no TCP backend" "a TCP server in the upstream" \
    grep -qE "^[[:space:]]*server [0-9a-z.-]+:[0-9]+" "${E2E_DIR}/nginx.conf"
check "nginx dev: locations pass to the upstream" "fastcgi_pass is not longhaul_backend" \
    grep -qE "fastcgi_pass longhaul_backend;" "${E2E_DIR}/snippets/longhaul-fastcgi.conf"
true
