#!/usr/bin/env bash
#
# Tests/Package/run.sh: the Debian package tested as a user would. Builds it (scripts/package), makes a fresh
# Debian 12 root from a cached debootstrap, installs the .deb there with apt (its Depends resolve from the Debian
# mirror), boots the root with systemd as PID 1 (systemd-nspawn --boot) and starts the real units with systemctl,
# then runs the flow (page, generate, check, API, stream) through the installed nginx over TLS against the mock
# LLM on this machine's loopback; then socket permissions, hardening, restart on failure, the drain on
# `systemctl stop`, and a purge that must leave nothing behind. Where the root cannot boot, it falls back to a
# chroot and starts the installed binary as the unit's ExecStart does (said in a NOTE line).
# Prints `PASS name` / `FAIL name: reason` lines and ends with `N passed, N failed`.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: Tests/Package/run.sh [--deb PATH] [--no-boot] [-k] [-h]

  --deb PATH   test this package instead of building one with scripts/package
  --no-boot    skip systemd-nspawn --boot: chroot, and the binary started as the unit's ExecStart does
  -k           keep the work directory (the root, logs) and print where it is
  -h           this help

Needs root, debootstrap and systemd-container (installed with apt-get when missing) and the Debian mirror of
/etc/apt/sources.list.d/debian.sources (or LONGHAUL_DEBIAN_MIRROR). The debootstrap root is cached in
/var/cache/longhaul-test/ (LONGHAUL_TEST_CACHE), keyed by its package list; each run extracts a fresh copy, and
downloaded .debs are kept in the cache's apt-archives/ for the next run. Exits non-zero when a check failed.
EOF
}

HERE="$(cd "$(dirname "$0")" && pwd -P)"
# pass, fail, check, json, htmx_generate, api_create, poll_body, poll_api_status… (http and backend_alive are
# redefined below for the installed nginx and the installed service).
# shellcheck source=Tests/EndToEnd/lib.sh
source "${HERE}/../EndToEnd/lib.sh"

deb=""
boot=1
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --deb)
            [[ $# -ge 2 ]] || fatal "--deb needs a path"
            deb="$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")"
            shift 2
            ;;
        --no-boot)
            boot=0
            shift
            ;;
        -k)
            keep=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 64
            ;;
    esac
done
[[ ${EUID} -eq 0 ]] || fatal "needs root (debootstrap, chroot, systemd-nspawn)"

readonly SUITE=bookworm
# The root holds what debootstrap's minbase has, plus systemd to boot it; everything else (nginx, ssl-cert,
# libfcgi0ldbl…) must come from the package's own Depends and Recommends.
readonly ROOT_PACKAGES=systemd,systemd-sysv,dbus
CACHE="${LONGHAUL_TEST_CACHE:-/var/cache/longhaul-test}"
MACHINE="longhaul-pkg-$$"
PATH_IN_ROOT=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/longhaul-package.XXXXXX")"
WORK="$(cd "${WORK}" && pwd -P)"
ROOT="${WORK}/root"
# Read by Tests/EndToEnd/lib.sh's helpers (json, the response log).
E2E_DIR="${WORK}"
E2E_PORT=""
MODE=""
LEADER=""
NSPAWN_PID=""
MOUNTS=()
TIMINGS=()
step_started=${SECONDS}

# Records how long the step that just ended took. $1: its name.
timing() {
    TIMINGS+=("$(printf '%-34s %4d s' "$1" $((SECONDS - step_started)))")
    log "$1: $((SECONDS - step_started)) s"
    step_started=${SECONDS}
}

# Runs a command inside the root: in the booted container (nsenter into its namespaces) or in the chroot.
in_root() {
    if [[ "${MODE}" == boot ]]; then
        nsenter -t "${LEADER}" -m -u -i -p -C -- env -i PATH="${PATH_IN_ROOT}" LANG=C.UTF-8 \
            DEBIAN_FRONTEND=noninteractive "$@"
    else
        chroot "${ROOT}" env -i PATH="${PATH_IN_ROOT}" LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    fi
}

# Stops the container: SIGTERM makes systemd-nspawn power the root off cleanly; SIGKILL after 30 s.
stop_container() {
    [[ -n "${NSPAWN_PID}" ]] || return 0
    if pid_alive "${NSPAWN_PID}"; then
        kill -TERM "${NSPAWN_PID}" 2>/dev/null || true
        wait_until 30 process_gone "${NSPAWN_PID}" || kill -KILL "${NSPAWN_PID}" 2>/dev/null || true
    fi
    wait "${NSPAWN_PID}" 2>/dev/null || true
    NSPAWN_PID=""
}

# In the chroot: stops what was started there (nginx, the backend), by the pids recorded in WORK/pids.
stop_chroot_processes() {
    local name pid
    for name in nginx backend; do
        pid="$(saved_pid "${WORK}" "${name}")"
        [[ -n "${pid}" ]] || continue
        kill -TERM "${pid}" 2>/dev/null || true
        wait_until 20 process_gone "${pid}" || kill -KILL "${pid}" 2>/dev/null || true
        rm -f "${WORK}/pids/${name}.pid"
    done
}

# Runs on any exit: the container or the chroot's processes, the mounts, the mock, the work directory.
# shellcheck disable=SC2317
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    stop_container
    stop_chroot_processes
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount -l "${MOUNTS[i]}" 2>/dev/null || true
    done
    stop_mock "${WORK}"
    if [[ ${E2E_FAILED} -gt 0 || ${rc} -ne 0 ]]; then
        local file
        for file in nspawn.log mock.log install.log; do
            if [[ -s "${WORK}/${file}" ]]; then
                printf -- '---- last lines of %s ----\n' "${file}" >&2
                tail -n 25 "${WORK}/${file}" >&2
            fi
        done
    fi
    if [[ ${keep} -eq 1 ]]; then
        log "kept ${WORK}"
    else
        rm -rf --one-file-system "${WORK}"
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the timings and the summary, and exits.
finish() {
    timing "the rest"
    printf '\nTimings:\n'
    printf '  %s\n' "${TIMINGS[@]}"
    printf '\n'
    if [[ ${E2E_FAILED} -gt 0 ]]; then
        printf 'Failed checks:\n'
        printf '  %s\n' "${E2E_FAILURES[@]}"
    fi
    printf '%d passed, %d failed\n' "${E2E_PASSED}" "${E2E_FAILED}"
    [[ ${E2E_FAILED} -eq 0 ]] || exit 1
    exit 0
}

# --- The tools and the package ------------------------------------------------------------------------------------

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ -z "${deb}" ]]; then
    if deb="$("${LONGHAUL_ROOT}/scripts/package" 2>"${WORK}/package.log" | tail -n 1)" && [[ -f "${deb}" ]]; then
        pass "package: scripts/package builds ${deb##*/}"
    else
        fail "package: scripts/package builds the .deb" "$(tail -n 5 "${WORK}/package.log")"
        finish
    fi
fi
[[ -f "${deb}" ]] || fatal "no such package: ${deb}"
timing "build the package"

# lintian: no errors (its default --fail-on); warnings are listed, and overridden only with a reason
# (deploy/debian/lintian-overrides).
if lintian "${deb}" >"${WORK}/lintian.txt" 2>&1; then
    pass "lintian: no errors ($(grep -c '^W: ' "${WORK}/lintian.txt" || true) warnings)"
else
    fail "lintian: no errors" "$(grep -E '^[EW]: ' "${WORK}/lintian.txt" | head -n 5 | tr '\n' ' ')"
fi
grep -E '^[EW]: ' "${WORK}/lintian.txt" || true
timing "lintian"

# --- The root -----------------------------------------------------------------------------------------------------

# The Debian mirror: LONGHAUL_DEBIAN_MIRROR, else the first URIs of this machine's debian.sources, else the
# first `deb` line of sources.list.
debian_mirror() {
    local uri=""
    if [[ -n "${LONGHAUL_DEBIAN_MIRROR:-}" ]]; then
        uri="${LONGHAUL_DEBIAN_MIRROR}"
    elif [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        uri="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources |
            grep -v security | head -n 1)"
    fi
    if [[ -z "${uri}" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)"
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

MIRROR="$(debian_mirror)"
cache_key="$(printf '%s\n' "${SUITE}" "${ROOT_PACKAGES}" "minbase" "${MIRROR}" "v1" | sha256sum | cut -c1-12)"
cache_tar="${CACHE}/${SUITE}-root-${cache_key}.tar"
mkdir -p "${CACHE}/apt-archives/partial"

# Makes the cached root once (debootstrap, a few minutes), under a lock so that two runs do not both make it.
make_cached_root() {
    local tmp="${CACHE}/${SUITE}-root-${cache_key}.tmp"
    rm -rf --one-file-system "${tmp}"
    log "debootstrap ${SUITE} (${ROOT_PACKAGES}) from ${MIRROR}: cached in ${cache_tar} for the next runs"
    debootstrap --variant=minbase --include="${ROOT_PACKAGES}" "${SUITE}" "${tmp}" "${MIRROR}" \
        >"${WORK}/debootstrap.log" 2>&1 || {
        tail -n 20 "${WORK}/debootstrap.log" >&2
        return 1
    }
    # The same sources as this machine (updates and security too), when it has Debian's deb822 file.
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        install -m 0644 /etc/apt/sources.list.d/debian.sources "${tmp}/etc/apt/sources.list.d/debian.sources"
        rm -f "${tmp}/etc/apt/sources.list"
    fi
    # No recommends beyond what the user would get: apt's defaults stay. Lists are kept (the install needs them).
    rm -rf "${tmp}/var/cache/apt/archives/"*.deb
    tar --numeric-owner -C "${tmp}" -cf "${cache_tar}.tmp" . && mv -f "${cache_tar}.tmp" "${cache_tar}"
    rm -rf --one-file-system "${tmp}"
}

(
    flock 9
    [[ -s "${cache_tar}" ]] || make_cached_root
) 9>"${CACHE}/.lock" || fatal "could not make the ${SUITE} root (see above)"
mkdir -p "${ROOT}"
tar --numeric-owner -C "${ROOT}" -xf "${cache_tar}"
cp "${deb}" "${ROOT}/root/"
deb_in_root="/root/${deb##*/}"
pass "root: a fresh ${SUITE} root from the cache"
timing "the root (cache: ${cache_tar##*/})"

# --- The mock LLM on the loopback ---------------------------------------------------------------------------------

PKG_KEY="sk-package-SECRET-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
MOCK_LATENCY=0.5 start_mock "${WORK}" || {
    fail "setup: mock LLM listens" "see mock.log"
    finish
}

# --- Boot, or chroot ----------------------------------------------------------------------------------------------

# Boots the root with systemd as PID 1, sharing this machine's network; sets LEADER (the container's PID 1 seen
# from here). Returns 1 (and says why) when it cannot.
boot_root() {
    # --register=no and --keep-unit: this machine's PID 1 is no systemd (nothing to register with); the apt
    # archive cache is bound in so that the dependencies are downloaded once.
    systemd-nspawn --quiet --boot --register=no --keep-unit --machine="${MACHINE}" --directory="${ROOT}" \
        --bind="${CACHE}/apt-archives:/var/cache/apt/archives" --console=read-only \
        >"${WORK}/nspawn.log" 2>&1 </dev/null &
    NSPAWN_PID=$!
    MODE=boot
    local tries=600 state=""
    while ((tries-- > 0)); do
        pid_alive "${NSPAWN_PID}" || break
        LEADER="$(pgrep -P "${NSPAWN_PID}" | head -n 1 || true)"
        if [[ -n "${LEADER}" ]]; then
            state="$(in_root systemctl is-system-running 2>/dev/null || true)"
            [[ "${state}" == running || "${state}" == degraded ]] && return 0
        fi
        sleep 0.1
    done
    BOOT_FAILURE="systemd-nspawn --boot did not reach a running system within 60 s (state '${state}'): $(
        grep -v '^$' "${WORK}/nspawn.log" | tail -n 3 | tr '\n' ' ')"
    stop_container
    MODE=""
    return 1
}

# The chroot's kernel file systems and the apt archive cache.
mount_chroot() {
    local dir
    for dir in proc sys dev dev/pts; do
        mkdir -p "${ROOT}/${dir}"
    done
    mount -t proc proc "${ROOT}/proc" && MOUNTS+=("${ROOT}/proc")
    mount --rbind /sys "${ROOT}/sys" && mount --make-rslave "${ROOT}/sys" && MOUNTS+=("${ROOT}/sys")
    mount --rbind /dev "${ROOT}/dev" && mount --make-rslave "${ROOT}/dev" && MOUNTS+=("${ROOT}/dev")
    mount --bind "${CACHE}/apt-archives" "${ROOT}/var/cache/apt/archives" &&
        MOUNTS+=("${ROOT}/var/cache/apt/archives")
    mkdir -p "${ROOT}/run/lock"
    # No service starts during the installation (the chroot has no init); this test starts them.
    printf '#!/bin/sh\nexit 101\n' >"${ROOT}/usr/sbin/policy-rc.d"
    chmod 0755 "${ROOT}/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "${ROOT}/etc/resolv.conf" 2>/dev/null || true
}

BOOT_FAILURE="not tried (--no-boot)"
if [[ ${boot} -eq 1 ]] && boot_root; then
    MODE=boot
    pass "boot: systemd-nspawn --boot runs systemd as PID 1 in the root"
else
    MODE=chroot
    printf 'NOTE: %s; falling back to a chroot, the binary started as the unit ExecStart does.\n' "${BOOT_FAILURE}"
    mount_chroot
fi
timing "boot (${MODE})"

# --- Install ------------------------------------------------------------------------------------------------------

# nginx and our site must listen on free ports of this machine (the network is shared): the installed nginx
# must not start on 80 and 443 before the edit below, so no service starts during the installation
# (policy-rc.d, Debian's switch for that); nginx and the backend are started by this test afterwards.
printf '#!/bin/sh\nexit 101\n' >"${ROOT}/usr/sbin/policy-rc.d"
chmod 0755 "${ROOT}/usr/sbin/policy-rc.d"
if in_root apt-get install -y -q "${deb_in_root}" >"${WORK}/install.log" 2>&1 ||
    { in_root apt-get update -q >>"${WORK}/install.log" 2>&1 &&
        in_root apt-get install -y -q "${deb_in_root}" >>"${WORK}/install.log" 2>&1; }; then
    pass "install: apt-get install ./${deb##*/} resolves its Depends and configures"
else
    fail "install: apt-get install ./${deb##*/}" "$(tail -n 5 "${WORK}/install.log" | tr '\n' ' ')"
    finish
fi
rm -f "${ROOT}/usr/sbin/policy-rc.d"
timing "apt-get install"

# Succeeds when a package is installed in the root. $1: its name.
# shellcheck disable=SC2016,SC2317 # a dpkg-query format; called through check
root_pkg_installed() {
    [[ "$(in_root dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}
for pkg in libfcgi0ldbl libcurl4 libhiredis0.14 nginx ssl-cert; do
    check "install: ${pkg} came with the package's Depends/Recommends" "not installed" root_pkg_installed "${pkg}"
done
in_root dpkg -L longhaul | sort >"${WORK}/files.txt"
check "install: the binary runs with no Swift run time" "longhaul --help failed" in_root /usr/bin/longhaul --help
check "install: htmx is in /usr/share/longhaul/static/vendor" "missing" \
    test -s "${ROOT}/usr/share/longhaul/static/vendor/htmx-2.min.js"
# shellcheck disable=SC2016 # expanded by the root's shell
assert_eq "install: user longhaul, primary group www-data, no login shell" "longhaul www-data nologin" \
    "$(in_root sh -c 'printf "%s %s %s" "$(id -un longhaul)" "$(id -gn longhaul)" \
        "$(getent passwd longhaul | cut -d: -f7 | xargs basename)"' 2>/dev/null)"
assert_eq "install: /etc/longhaul/longhaul.env is 0600 root:root" "600 root:root" \
    "$(stat -c '%a %U:%G' "${ROOT}/etc/longhaul/longhaul.env" 2>/dev/null)"
check "install: the key is commented out in the env file" "an uncommented key" \
    grep -q '^#ANTHROPIC_API_KEY=' "${ROOT}/etc/longhaul/longhaul.env"
# shellcheck disable=SC2016 # a dpkg-query format
check "install: the env file is a conffile" "not listed" \
    grep -qx ' */etc/longhaul/longhaul.env [0-9a-f]*' <(in_root dpkg-query -W -f='${Conffiles}\n' longhaul)
assert_eq "install: the site is enabled" "../sites-available/longhaul.conf" \
    "$(readlink "${ROOT}/etc/nginx/sites-enabled/longhaul.conf" 2>/dev/null)"
check "install: the snakeoil certificate exists (ssl-cert)" "missing" \
    test -s "${ROOT}/etc/ssl/certs/ssl-cert-snakeoil.pem"
check "install: nginx -t accepts the installed site as it is" "$(in_root nginx -t 2>&1 | tail -n 2)" \
    in_root nginx -t

# The administrator's edits: the key (and, for this test, the mock's URL and a short drain) in the env file, and
# ports. The site listens on 80 and 443 as installed; here on free ports of this shared network, with Debian's
# default site off (it listens on 80 too).
HTTP_PORT="$(free_port)"
E2E_PORT="$(free_port)"
{
    printf 'ANTHROPIC_API_KEY=%s\n' "${PKG_KEY}"
    printf 'ANTHROPIC_BASE_URL=http://127.0.0.1:%s\n' "${MOCK_PORT}"
    printf 'LONGHAUL_SHUTDOWN_GRACE=3\n'
} >>"${ROOT}/etc/longhaul/longhaul.env"
sed -i -e "s/listen 80;/listen ${HTTP_PORT};/" -e "s/listen \[::\]:80;/listen [::]:${HTTP_PORT};/" \
    -e "s/listen 443 ssl/listen ${E2E_PORT} ssl/" -e "s/listen \[::\]:443 ssl/listen [::]:${E2E_PORT} ssl/" \
    "${ROOT}/etc/nginx/sites-available/longhaul.conf"
rm -f "${ROOT}/etc/nginx/sites-enabled/default"
if ! grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
    sed -i '/listen \[::\]/d' "${ROOT}/etc/nginx/sites-available/longhaul.conf"
fi

# TLS is verified against the snakeoil certificate, under the host name it was made for.
cp "${ROOT}/etc/ssl/certs/ssl-cert-snakeoil.pem" "${WORK}/cert.pem"
CERT_NAME="$(openssl x509 -noout -subject -nameopt multiline -in "${WORK}/cert.pem" |
    sed -n 's/^ *commonName *= *//p')"

# Sends one request through the installed nginx over verified TLS (replaces Tests/EndToEnd/lib.sh's http).
# Sets HTTP_STATUS, HTTP_BODY, HTTP_HEADERS. $1: method. $2: path. $@ (rest): more curl arguments.
http() {
    local method="$1" path="$2"
    shift 2
    local args=(-sS --max-time 20 --cacert "${WORK}/cert.pem" --resolve "${CERT_NAME}:${E2E_PORT}:127.0.0.1"
        -o "${WORK}/last.body" -D "${WORK}/last.headers" -w '%{http_code}')
    case "${method}" in
        GET) ;;
        *) args+=(-X "${method}") ;;
    esac
    : >"${WORK}/last.body"
    : >"${WORK}/last.headers"
    HTTP_STATUS="$(curl "${args[@]}" "$@" "https://${CERT_NAME}:${E2E_PORT}${path}" 2>"${WORK}/last.curl")" || true
    [[ -n "${HTTP_STATUS}" ]] || HTTP_STATUS="000"
    HTTP_BODY="$(cat "${WORK}/last.body")"
    HTTP_HEADERS="$(tr -d '\r' <"${WORK}/last.headers")"
    printf '### %s %s -> %s\n%s\n%s\n' "${method}" "${path}" "${HTTP_STATUS}" "${HTTP_HEADERS}" "${HTTP_BODY}" \
        >>"${WORK}/responses.log"
}

# The backend's main pid: the unit's MainPID, or the chroot's process.
backend_pid() {
    if [[ "${MODE}" == boot ]]; then
        in_root systemctl show -P MainPID longhaul.service 2>/dev/null | grep -v '^0$' || true
    else
        saved_pid "${WORK}" backend
    fi
}

# Succeeds while the backend runs (replaces Tests/EndToEnd/lib.sh's backend_alive, read by the poll helpers).
backend_alive() {
    if [[ "${MODE}" == boot ]]; then
        in_root systemctl is-active --quiet longhaul.service
    else
        pid_alive "$(saved_pid "${WORK}" backend)"
    fi
}

# The backend's log: the journal, or the chroot's log file.
backend_log() {
    if [[ "${MODE}" == boot ]]; then
        in_root journalctl -u longhaul.service --no-pager -o cat 2>/dev/null
    else
        cat "${WORK}/backend.log" 2>/dev/null
    fi
}

# --- Start --------------------------------------------------------------------------------------------------------

if [[ "${MODE}" == boot ]]; then
    in_root systemctl daemon-reload
    if in_root systemctl enable --now longhaul.service >"${WORK}/start.log" 2>&1 &&
        wait_until 20 in_root test -S /run/longhaul/longhaul.sock; then
        pass "start: systemctl enable --now longhaul"
    else
        fail "start: systemctl enable --now longhaul" "$(in_root systemctl status --no-pager longhaul 2>&1 |
            tail -n 8 | tr '\n' ' ')"
    fi
    if in_root systemctl restart nginx >>"${WORK}/start.log" 2>&1; then
        pass "start: systemctl restart nginx (the installed site)"
    else
        fail "start: systemctl restart nginx" "$(in_root journalctl -u nginx --no-pager -n 5 2>&1 | tr '\n' ' ')"
    fi
else
    # As longhaul.service does: User=longhaul, Group=www-data, RuntimeDirectory=longhaul (0750), UMask=0007,
    # EnvironmentFile=, WorkingDirectory=/run/longhaul, ExecStart=.
    mkdir -p "${ROOT}/run/longhaul"
    in_root chown longhaul:www-data /run/longhaul
    chmod 0750 "${ROOT}/run/longhaul"
    exec_start="$(sed -n 's/^ExecStart=//p' "${ROOT}/lib/systemd/system/longhaul.service")"
    # shellcheck disable=SC2016 # expanded by the chroot's shell
    chroot "${ROOT}" env -i PATH="${PATH_IN_ROOT}" sh -c 'set -a; . /etc/longhaul/longhaul.env; set +a;
        cd /run/longhaul && umask 0007 &&
        exec setpriv --reuid=longhaul --regid=www-data --init-groups --no-new-privs --inh-caps=-all \
            --bounding-set=-all '"${exec_start}" >"${WORK}/backend.log" 2>&1 &
    _save_pid "${WORK}" backend $!
    if wait_until_alive "$(saved_pid "${WORK}" backend)" 20 test -S "${ROOT}/run/longhaul/longhaul.sock"; then
        pass "start: the installed binary as ExecStart runs it (user longhaul, group www-data)"
    else
        fail "start: the installed binary as ExecStart runs it" "$(tail -n 3 "${WORK}/backend.log")"
    fi
    chroot "${ROOT}" /usr/sbin/nginx -g 'daemon off;' >"${WORK}/nginx.log" 2>&1 &
    _save_pid "${WORK}" nginx $!
    check "start: the installed nginx with the installed site" "$(tail -n 3 "${WORK}/nginx.log")" \
        wait_until_alive "$(saved_pid "${WORK}" nginx)" 20 test -s "${ROOT}/run/nginx.pid"
fi
if wait_until 20 curl -fsS -o /dev/null --cacert "${WORK}/cert.pem" \
    --resolve "${CERT_NAME}:${E2E_PORT}:127.0.0.1" "https://${CERT_NAME}:${E2E_PORT}/static/app.css"; then
    pass "start: nginx serves the static files over TLS (snakeoil certificate verified)"
else
    fail "start: nginx serves the static files over TLS" "no answer on port ${E2E_PORT}"
fi
timing "start"

# --- The flow -----------------------------------------------------------------------------------------------------

http GET /
assert_status "flow: GET / is 200" 200
assert_body_contains "flow: the page has the form" 'name="query"'
assert_body_contains "flow: the page loads htmx from /static/vendor" '/static/vendor/htmx-2.min.js'
assert_header_match "flow: nginx sends the security headers" Content-Security-Policy "default-src 'self'"
http GET /static/vendor/htmx-2.min.js
assert_status "flow: htmx is served by nginx" 200

pkg_query="package test one"
htmx_generate "${pkg_query}"
assert_status "flow: POST /generate (htmx) is 200" 200
assert_match "flow: generate gives a task id" '^[A-Za-z0-9_-]{22,}$' "${TASK_ID}"
if poll_body 30 '<h2>Result</h2>' GET "/check?task_id=${TASK_ID}" -H 'HX-Request: true'; then
    pass "flow: /check gives the result"
else
    fail "flow: /check gives the result" "$(last_response)"
fi
assert_body_contains "flow: the mock's reply, through the installed nginx" "Mock reply to: ${pkg_query}"

api_create "package test two"
assert_status "flow: POST /api/tasks is 202" 202
pkg_api_id="${TASK_ID}"
if poll_api_status 30 "${pkg_api_id}" succeeded; then
    pass "flow: GET /api/tasks/ID reaches succeeded"
else
    fail "flow: GET /api/tasks/ID reaches succeeded" "$(last_response)"
fi
assert_eq "flow: the API's result" "Mock reply to: package test two" "$(json result)"

api_create "package test three"
curl -sS -N --max-time 30 --cacert "${WORK}/cert.pem" --resolve "${CERT_NAME}:${E2E_PORT}:127.0.0.1" \
    "https://${CERT_NAME}:${E2E_PORT}/api/tasks/${TASK_ID}/events" >"${WORK}/events.txt" 2>>"${WORK}/curl.log" || true
check "flow: the event stream ends with event: done" "$(tail -c 300 "${WORK}/events.txt")" \
    grep -q '^event: done' "${WORK}/events.txt"
check "flow: the stream carried the reply's words" "no delta" grep -q 'package test three' "${WORK}/events.txt"
check "flow: the key never reaches a client" "the key is in a response" \
    bash -c "! grep -qF -- '${PKG_KEY}' '${WORK}/responses.log' '${WORK}/events.txt'"
timing "flow"

# --- systemd: permissions, hardening, restart, drain ---------------------------------------------------------------

# The socket: nginx's workers (www-data) may connect, nobody else.
assert_eq "unit: the socket is 0660 longhaul:www-data" "660 longhaul:www-data" \
    "$(in_root stat -c '%a %U:%G' /run/longhaul/longhaul.sock 2>/dev/null)"
# shellcheck disable=SC2016 # Perl
connect='use Socket; socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die; connect($s, pack_sockaddr_un($ARGV[0])) or die "$!\n"'
check "unit: www-data (nginx's workers) can connect to the socket" "connect failed" \
    in_root setpriv --reuid=www-data --regid=www-data --init-groups perl -e "${connect}" /run/longhaul/longhaul.sock
refute "unit: another user (nobody) cannot connect to the socket" "nobody connected" \
    in_root setpriv --reuid=nobody --regid=nogroup --clear-groups perl -e "${connect}" /run/longhaul/longhaul.sock

if [[ "${MODE}" == boot ]]; then
    # Pids are the container's (its own pid namespace): every look at them goes through in_root.
    pkg_pid="$(backend_pid)"
    assert_eq "unit: the process runs as longhaul, group www-data" "longhaul www-data" \
        "$(in_root stat -c '%U %G' "/proc/${pkg_pid}" 2>/dev/null)"
    assert_eq "unit: NoNewPrivs and no capabilities" "NoNewPrivs:1 CapEff:0000000000000000 CapBnd:0000000000000000" \
        "$(in_root sh -c "grep -E '^(NoNewPrivs|CapEff|CapBnd):' /proc/${pkg_pid}/status" 2>/dev/null |
            tr -d '\t' | sort -r | tr '\n' ' ' | sed 's/ $//')"
    # The service's own view of the file system: its mount namespace.
    check "unit: ProtectSystem=strict (/usr and /etc are read-only for the service)" "writable" \
        in_root nsenter -t "${pkg_pid}" -m -- sh -c '! test -w /usr/bin && ! test -w /etc'
    check "unit: ProtectHome (the service does not see /root)" "/root is visible" \
        in_root nsenter -t "${pkg_pid}" -m -- sh -c "! test -e '${deb_in_root}'"
    in_root touch /tmp/package-test-probe
    check "unit: PrivateTmp (the service has its own /tmp)" "it sees the root's /tmp" \
        in_root nsenter -t "${pkg_pid}" -m -- sh -c '! test -e /tmp/package-test-probe'
    assert_eq "unit: seccomp filter on (SystemCallFilter)" "Seccomp:2" \
        "$(in_root sh -c "grep -E '^Seccomp:' /proc/${pkg_pid}/status" 2>/dev/null | tr -d '\t')"
    in_root systemd-analyze security --no-pager longhaul.service >"${WORK}/security.txt" 2>&1 || true
    pkg_exposure="$(sed -n 's/.*Overall exposure level for longhaul.service: \([0-9.]*\).*/\1/p' "${WORK}/security.txt")"
    if [[ -n "${pkg_exposure}" ]] && awk -v e="${pkg_exposure}" 'BEGIN { exit !(e < 4.0) }'; then
        pass "unit: systemd-analyze security exposure ${pkg_exposure} (< 4, OK)"
    else
        fail "unit: systemd-analyze security exposure below 4" "got '${pkg_exposure}': $(tail -n 2 "${WORK}/security.txt")"
    fi

    # Restart=on-failure: a killed process comes back (RestartSec=1) and serves again.
    in_root sh -c "kill -KILL ${pkg_pid}"
    pkg_new=""
    for _ in $(seq 1 100); do
        pkg_new="$(backend_pid)"
        if [[ -n "${pkg_new}" && "${pkg_new}" != "${pkg_pid}" ]] && in_root test -S /run/longhaul/longhaul.sock; then
            break
        fi
        sleep 0.1
    done
    if [[ -n "${pkg_new}" && "${pkg_new}" != "${pkg_pid}" ]]; then
        pass "unit: kill -9 restarts it (Restart=on-failure)"
    else
        fail "unit: kill -9 restarts it (Restart=on-failure)" "MainPID is '${pkg_new}'"
    fi
    if poll_status 20 200 GET /; then
        pass "unit: it serves again after the restart"
    else
        fail "unit: it serves again after the restart" "$(last_response)"
    fi

    # longhaul@.service: an instance gets its own socket in the same directory.
    if in_root systemctl start longhaul@1.service >/dev/null 2>&1 &&
        wait_until 10 in_root test -S /run/longhaul/longhaul-1.sock; then
        pass "unit: longhaul@1 starts with its own socket, /run/longhaul/longhaul-1.sock"
    else
        fail "unit: longhaul@1 starts with its own socket" "$(in_root systemctl status --no-pager longhaul@1 2>&1 |
            tail -n 5 | tr '\n' ' ')"
    fi
    in_root systemctl stop longhaul@1.service >/dev/null 2>&1 || true

    # An upgrade (here the same version again): postinst restarts the running service, the administrator's
    # settings and site link stay.
    pkg_before="$(backend_pid)"
    if in_root apt-get install -y -q --reinstall "${deb_in_root}" >"${WORK}/reinstall.log" 2>&1; then
        pass "upgrade: apt-get install --reinstall"
    else
        fail "upgrade: apt-get install --reinstall" "$(tail -n 5 "${WORK}/reinstall.log" | tr '\n' ' ')"
    fi
    pkg_after="$(backend_pid)"
    if [[ -n "${pkg_after}" && "${pkg_after}" != "${pkg_before}" ]] && backend_alive; then
        pass "upgrade: postinst restarted the running service"
    else
        fail "upgrade: postinst restarted the running service" "MainPID ${pkg_before} -> '${pkg_after}'"
    fi
    check "upgrade: the key in /etc/longhaul/longhaul.env is kept (conffile)" "the key is gone" \
        grep -qF "ANTHROPIC_API_KEY=${PKG_KEY}" "${ROOT}/etc/longhaul/longhaul.env"
    check "upgrade: the edited site is kept, still enabled" "the edit or the link is gone" \
        grep -q "listen ${E2E_PORT} ssl" "${ROOT}/etc/nginx/sites-enabled/longhaul.conf"
    if poll_status 20 200 GET /; then
        pass "upgrade: it serves after the upgrade"
    else
        fail "upgrade: it serves after the upgrade" "$(last_response)"
    fi

    # systemctl stop drains: a task that ends within the grace (3 s here) succeeds, a longer one ends
    # interrupted, and the service stops cleanly (exit 0).
    api_create "package drain short [mock:latency=2]"
    pkg_short="${TASK_ID}"
    api_create "package drain long [mock:latency=60]"
    pkg_long="${TASK_ID}"
    poll_api_status 10 "${pkg_long}" running >/dev/null || true
    pkg_stop_started=${SECONDS}
    in_root systemctl stop longhaul.service
    pkg_stop_took=$((SECONDS - pkg_stop_started))
    if ((pkg_stop_took >= 2 && pkg_stop_took < 25)); then
        pass "stop: systemctl stop waits for the drain (${pkg_stop_took} s; grace 3 s)"
    else
        fail "stop: systemctl stop waits for the drain" "it took ${pkg_stop_took} s"
    fi
    backend_log >"${WORK}/journal.txt"
    check "stop: the short task finished during the drain" "no succeeded line for ${pkg_short}" \
        grep -qE "task.id=${pkg_short}.*task.status=succeeded|task.status=succeeded.*task.id=${pkg_short}" \
        "${WORK}/journal.txt"
    check "stop: the long task ended interrupted" "no interrupted line for ${pkg_long}" \
        grep -qE "error.type=interrupted.*task.id=${pkg_long}|task.id=${pkg_long}.*error.type=interrupted" \
        "${WORK}/journal.txt"
    assert_eq "stop: the service exited cleanly" "success 0" \
        "$(in_root systemctl show -P Result longhaul.service) $(in_root systemctl show -P ExecMainStatus longhaul.service)"
    refute "stop: the socket is gone" "still there" in_root test -e /run/longhaul/longhaul.sock
    http GET /
    assert_status "stop: nginx says the service is unavailable (503) while it is stopped" 503
    check "journal: the key never shows in the service's log" "the key is in the journal" \
        bash -c "! grep -qF -- '${PKG_KEY}' '${WORK}/journal.txt'"
    timing "unit checks"
else
    printf 'NOTE: hardening, restart and drain through systemd need the booted root: not run.\n'
    stop_chroot_processes
    # What systemd does when the unit stops (RuntimeDirectory=).
    rm -rf "${ROOT}/run/longhaul"
fi

# --- Remove, then purge -------------------------------------------------------------------------------------------

# remove: the running service stops (prerm), the program goes, the configuration stays.
if [[ "${MODE}" == boot ]]; then
    in_root systemctl start longhaul.service >/dev/null 2>&1 || true
fi
if in_root apt-get remove -y -q longhaul >"${WORK}/remove.log" 2>&1; then
    pass "remove: apt-get remove longhaul"
else
    fail "remove: apt-get remove longhaul" "$(tail -n 5 "${WORK}/remove.log" | tr '\n' ' ')"
fi
if [[ "${MODE}" == boot ]]; then
    refute "remove: the service was stopped (prerm)" "still active" in_root systemctl is-active --quiet longhaul.service
fi
refute "remove: /usr/bin/longhaul is gone" "still there" test -e "${ROOT}/usr/bin/longhaul"
check "remove: the settings (with the key) and the site's link stay" "gone" \
    grep -qF "ANTHROPIC_API_KEY=${PKG_KEY}" "${ROOT}/etc/longhaul/longhaul.env"
check "remove: the site stays enabled and nginx -t passes" "$(in_root nginx -t 2>&1 | tail -n 2)" \
    bash -c "test -L '${ROOT}/etc/nginx/sites-enabled/longhaul.conf' && chroot '${ROOT}' nginx -t -q"

if in_root apt-get purge -y -q longhaul >"${WORK}/purge.log" 2>&1; then
    pass "purge: apt-get purge longhaul"
else
    fail "purge: apt-get purge longhaul" "$(tail -n 5 "${WORK}/purge.log" | tr '\n' ' ')"
fi
pkg_left=()
while IFS= read -r path; do
    [[ -n "${path}" && "${path}" != /. ]] || continue
    # Directories other packages own (/etc/nginx, /usr/bin…) stay, and so do usrmerge's links (/lib).
    if [[ -L "${ROOT}${path}" && -d "${ROOT}${path}" ]]; then
        continue
    fi
    if [[ -d "${ROOT}${path}" ]] && in_root dpkg-query -S "${path}" >/dev/null 2>&1; then
        continue
    fi
    if [[ -e "${ROOT}${path}" || -L "${ROOT}${path}" ]]; then
        pkg_left+=("${path}")
    fi
done <"${WORK}/files.txt"
for path in /etc/longhaul /etc/nginx/sites-enabled/longhaul.conf /run/longhaul /var/log/nginx/longhaul.access.log; do
    # Seen from inside: /run is the container's own tmpfs.
    if in_root test -e "${path}" || in_root test -L "${path}"; then
        pkg_left+=("${path}")
    fi
done
assert_eq "purge: none of the package's files, its site link, /etc/longhaul or its logs are left" "" \
    "${pkg_left[*]}"
check "purge: nginx -t still passes" "$(in_root nginx -t 2>&1 | tail -n 2)" in_root nginx -t
if [[ "${MODE}" == boot ]]; then
    # (The container's own /proc: in the chroot, /proc is this machine's, where other tests' backends run.)
    # shellcheck disable=SC2016 # expanded by the root's shell
    check "purge: no longhaul process is left (prerm stopped it)" "one still runs" \
        in_root sh -c '! cat /proc/[0-9]*/comm 2>/dev/null | grep -qx longhaul'
    refute "purge: systemd no longer knows longhaul.service" "it does" \
        in_root sh -c 'systemctl cat longhaul.service >/dev/null 2>&1'
    check "purge: no enablement link left" "a link is left" \
        bash -c "! find '${ROOT}/etc/systemd/system' -name 'longhaul*' | grep -q ."
fi
check "purge: the system user is kept (Debian's advice; deluser --system longhaul removes it)" "it is gone" \
    in_root id longhaul
timing "purge"

finish
