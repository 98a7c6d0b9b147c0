#!/usr/bin/env bash
# shellcheck shell=bash
#
# scripts/lib.sh: shell functions shared by scripts/run, scripts/test and Tests/EndToEnd/.
#
# Source it (`source scripts/lib.sh`); running it only prints this help. Every function documents its inputs.
# Functions that start processes keep their pids in DIR/pids/NAME.pid and their output in DIR/NAME.log, and
# remember DIR in LONGHAUL_RUN_DIR so that stop_backend and stop_all need no argument.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        -h | --help | "")
            printf 'Usage: source scripts/lib.sh\n\nShared functions (ensure_packages, ensure_htmx, make_dev_cert, '
            printf 'start_mock,\nstart_backend, stop_backend, render_nginx, start_nginx, stop_all) for scripts/run, '
            printf 'scripts/test\nand Tests/EndToEnd/. It is meant to be sourced, not run.\n'
            exit 0
            ;;
        *)
            printf 'lib.sh: unknown option: %s (it is meant to be sourced)\n' "$1" >&2
            exit 64
            ;;
    esac
fi

# Sourcing twice is harmless.
if [[ -n "${_LONGHAUL_LIB_LOADED:-}" ]]; then
    return 0
fi
_LONGHAUL_LIB_LOADED=1

# The repository root (the directory above scripts/).
LONGHAUL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# htmx comes from the django-htmx wheel on PyPI, pinned by version and checksums.
readonly HTMX_WHEEL_VERSION="1.29.0"
readonly HTMX_WHEEL_SHA256="0ec5be1645ed71e6787bd75e0250624f00274ac3bb1730f07b6629a95688929b"
readonly HTMX_JS_SHA256="71ea67185bfa8c98c39d31717c6fce5d852370fcdfd129db4543774d3145c0de"
readonly HTMX_SSE_SHA256="98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136"

# Debian packages the project needs at build, run and test time (nginx and pip are handled apart).
readonly LONGHAUL_APT_PACKAGES=(
    spawn-fcgi libfcgi-dev libcurl4-openssl-dev libhiredis-dev redis-server
    libcmark-gfm-dev libcmark-gfm-extensions-dev
    openssl curl python3 pkg-config ca-certificates shellcheck
)

# --- Messages -------------------------------------------------------------------------------------------------------

log() { printf -- '** %s\n' "$*" >&2; }
warn() { printf -- '** WARNING: %s\n' "$*" >&2; }
error() { printf -- '** ERROR: %s\n' "$*" >&2; }
fatal() {
    error "$@"
    exit 1
}

# --- Small helpers --------------------------------------------------------------------------------------------------

# Runs a command as root: directly when we are root, through sudo otherwise.
# $@: the command.
run_as_root() {
    if [[ ${EUID} -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        error "need root for: $* (run as root or install sudo)"
        return 1
    fi
}

# Succeeds when a Debian package is installed (not merely known, or removed with its configuration kept).
# $1 (string): the package name.
pkg_installed() {
    local status
    status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
    [[ "${status}" == "install ok installed" ]]
}

# Prints the SHA-256 of a file.
# $1 (path): the file.
sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# Succeeds when a file exists and has the given SHA-256.
# $1 (path): the file. $2 (hex): the expected checksum.
has_sha256() {
    [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]
}

# Succeeds while a process exists and is not a zombie (a zombie has exited but was not yet reaped).
# $1 (int): the pid.
pid_alive() {
    local pid="$1" stat
    [[ -n "${pid}" ]] || return 1
    kill -0 "${pid}" 2>/dev/null || return 1
    # Builtins only: scripts/run's supervisor calls this for every process several times a second.
    { read -r stat <"/proc/${pid}/stat"; } 2>/dev/null || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != "Z" ]]
}

# Polls a command every 0.1 s until it succeeds.
# $1 (seconds): how long to try. $@ (rest): the command.
# Returns 0 once the command succeeded, 1 on time-out.
wait_until() {
    local timeout="$1" tries
    shift
    tries=$((timeout * 10))
    while ((tries-- > 0)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Like wait_until, but gives up as soon as a process has died.
# $1 (int): the pid that must stay alive. $2 (seconds): how long to try. $@ (rest): the command.
# Returns 0 once the command succeeded, 1 on time-out or when the process died.
wait_until_alive() {
    local pid="$1" timeout="$2" tries
    shift 2
    tries=$((timeout * 10))
    while ((tries-- > 0)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        pid_alive "${pid}" || return 1
        sleep 0.1
    done
    return 1
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Prints the directory holding nginx's own files (fastcgi_params, mime.types), /etc/nginx on Debian.
nginx_conf_dir() {
    local conf
    conf="$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--conf-path=//p')"
    if [[ -n "${conf}" ]]; then
        dirname "${conf}"
    else
        printf '/etc/nginx\n'
    fi
}

# Escapes a string for use as the replacement of a sed `s|…|…|` command.
# $1 (string): the replacement text.
sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'
}

# Copies a template to a file, replacing @NAME@ placeholders.
# $1 (path): template. $2 (path): output. $@ (rest): NAME=VALUE pairs.
# Fails when a placeholder is left over.
render_template() {
    local template="$1" out="$2" pair name value
    shift 2
    local args=()
    for pair in "$@"; do
        name="${pair%%=*}"
        value="${pair#*=}"
        args+=(-e "s|@${name}@|$(sed_escape "${value}")|g")
    done
    sed "${args[@]}" "${template}" >"${out}.tmp"
    if grep -qE '@[A-Z0-9_]+@' "${out}.tmp"; then
        error "unreplaced placeholder in ${out}: $(grep -oE '@[A-Z0-9_]+@' "${out}.tmp" | sort -u | tr '\n' ' ')"
        rm -f "${out}.tmp"
        return 1
    fi
    mv "${out}.tmp" "${out}"
}

# --- Installation ---------------------------------------------------------------------------------------------------

# Installs, with apt-get, the Debian packages that are missing; does nothing when all are there.
# Services that packages would start (redis-server, nginx) are kept from starting: the scripts start their own.
ensure_packages() {
    local missing=() pkg nginx_pkg=""
    command -v dpkg-query >/dev/null 2>&1 || fatal "dpkg-query not found: this needs Debian or a derivative"
    for pkg in "${LONGHAUL_APT_PACKAGES[@]}"; do
        pkg_installed "${pkg}" || missing+=("${pkg}")
    done
    if [[ ! -x /usr/sbin/nginx ]]; then
        nginx_pkg="nginx-light"
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        missing+=(python3-pip)
    fi
    if [[ ${#missing[@]} -eq 0 && -z "${nginx_pkg}" ]]; then
        return 0
    fi

    log "installing missing packages: ${missing[*]} ${nginx_pkg}"
    export DEBIAN_FRONTEND=noninteractive
    run_as_root apt-get update -qq || return 1
    if [[ -n "${nginx_pkg}" ]]; then
        # nginx-light is gone from newer Debian releases, where the plain package is as small.
        if ! apt-cache show nginx-light >/dev/null 2>&1; then
            nginx_pkg="nginx"
        fi
        missing+=("${nginx_pkg}")
    fi

    # A policy-rc.d that answers 101 stops maintainer scripts from starting services (the redis on port 6379,
    # an nginx on port 80) during the install. Keep one that is already there.
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ ! -e "${policy}" ]]; then
        run_as_root sh -c "printf '#!/bin/sh\nexit 101\n' >'${policy}' && chmod 0755 '${policy}'" && own_policy=1
    fi
    run_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    if [[ ${own_policy} -eq 1 ]]; then
        run_as_root rm -f "${policy}"
    fi
    if [[ ${rc} -ne 0 ]]; then
        error "apt-get install failed (${rc}) for: ${missing[*]}"
        return "${rc}"
    fi
    [[ -x /usr/sbin/nginx ]] || fatal "nginx was installed but /usr/sbin/nginx is missing"
    python3 -m pip --version >/dev/null 2>&1 || fatal "python3 -m pip is still unavailable"
}

# The cluster suite's needs (Tests/Cluster/run.sh): iptables inside namespaces, libfaketime, Sentinel (Debian ships it
# apart from redis-server), iproute2. Services the packages would start are kept from starting, as in
# ensure_packages.
readonly LONGHAUL_CLUSTER_APT_PACKAGES=(iproute2 iptables faketime redis-sentinel)
ensure_cluster_packages() {
    local missing=() pkg
    for pkg in "${LONGHAUL_CLUSTER_APT_PACKAGES[@]}"; do
        pkg_installed "${pkg}" || missing+=("${pkg}")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    log "installing missing packages for the cluster suite: ${missing[*]}"
    run_as_root apt-get update -qq || return 1
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ ! -e "${policy}" ]]; then
        run_as_root sh -c "printf '#!/bin/sh\nexit 101\n' >'${policy}' && chmod 0755 '${policy}'" && own_policy=1
    fi
    run_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    if [[ ${own_policy} -eq 1 ]]; then
        run_as_root rm -f "${policy}"
    fi
    [[ ${rc} -eq 0 ]] || error "apt-get install failed (${rc}) for: ${missing[*]}"
    return "${rc}"
}

# Puts htmx 2 and its SSE extension into static/vendor/, from the pinned django-htmx wheel on PyPI with every
# checksum verified. Does nothing when both files are there with the right checksums.
ensure_htmx() (
    set -euo pipefail
    local vendor="${LONGHAUL_ROOT}/static/vendor"
    local htmx="${vendor}/htmx-2.min.js" sse="${vendor}/ext/hx-sse-2.min.js"
    if has_sha256 "${htmx}" "${HTMX_JS_SHA256}" && has_sha256 "${sse}" "${HTMX_SSE_SHA256}"; then
        exit 0
    fi

    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "${tmp}"' EXIT
    log "downloading django-htmx ${HTMX_WHEEL_VERSION} (for htmx 2) from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        "django-htmx==${HTMX_WHEEL_VERSION}" -d "${tmp}/dl" || fatal "pip download of django-htmx failed"
    local wheels=("${tmp}"/dl/django_htmx-"${HTMX_WHEEL_VERSION}"-*.whl)
    [[ -f "${wheels[0]}" ]] || fatal "pip download gave no django_htmx ${HTMX_WHEEL_VERSION} wheel"
    local actual
    actual="$(sha256_of "${wheels[0]}")"
    [[ "${actual}" == "${HTMX_WHEEL_SHA256}" ]] ||
        fatal "checksum mismatch for ${wheels[0]##*/}: got ${actual}, want ${HTMX_WHEEL_SHA256}"

    python3 -m zipfile -e "${wheels[0]}" "${tmp}/wheel"
    local src="${tmp}/wheel/django_htmx/static/django_htmx"
    has_sha256 "${src}/htmx-2.min.js" "${HTMX_JS_SHA256}" ||
        fatal "checksum mismatch for htmx-2.min.js in the wheel"
    has_sha256 "${src}/ext/hx-sse-2.min.js" "${HTMX_SSE_SHA256}" ||
        fatal "checksum mismatch for ext/hx-sse-2.min.js in the wheel"

    mkdir -p "${vendor}/ext"
    install -m 0644 "${src}/htmx-2.min.js" "${htmx}.tmp" && mv -f "${htmx}.tmp" "${htmx}"
    install -m 0644 "${src}/ext/hx-sse-2.min.js" "${sse}.tmp" && mv -f "${sse}.tmp" "${sse}"
    if ! has_sha256 "${htmx}" "${HTMX_JS_SHA256}" || ! has_sha256 "${sse}" "${HTMX_SSE_SHA256}"; then
        fatal "static/vendor/ files do not have the pinned checksums after copying"
    fi
    log "htmx installed in static/vendor/"
)

# Creates a self-signed development certificate for localhost (EC P-256, 825 days) as DIR/cert.pem and
# DIR/key.pem, unless a valid one is there.
# $1 (path): the directory.
make_dev_cert() {
    local dir="$1"
    mkdir -p "${dir}"
    if [[ -s "${dir}/cert.pem" && -s "${dir}/key.pem" ]] &&
        openssl x509 -checkend 86400 -noout -in "${dir}/cert.pem" >/dev/null 2>&1; then
        return 0
    fi
    log "creating a self-signed certificate for localhost in ${dir}"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 825 \
            -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -addext "extendedKeyUsage=serverAuth" \
            -keyout "${dir}/key.pem.tmp" -out "${dir}/cert.pem.tmp" >/dev/null 2>&1
    ) || {
        error "openssl could not create the development certificate"
        return 1
    }
    chmod 0644 "${dir}/cert.pem.tmp"
    mv -f "${dir}/key.pem.tmp" "${dir}/key.pem"
    mv -f "${dir}/cert.pem.tmp" "${dir}/cert.pem"
}

# --- Processes ------------------------------------------------------------------------------------------------------

# Records a pid in DIR/pids/NAME.pid.
# $1 (path): DIR. $2 (string): NAME. $3 (int): the pid.
_save_pid() {
    mkdir -p "$1/pids"
    printf '%s\n' "$3" >"$1/pids/$2.pid"
}

# Prints the pid recorded for NAME, or nothing.
# $1 (path): DIR. $2 (string): NAME.
saved_pid() {
    local file="$1/pids/$2.pid"
    [[ -s "${file}" ]] && cat "${file}"
    return 0
}

# Succeeds when a process belongs to a run directory: its command line names DIR or it runs in DIR. This keeps a
# stale pid file (left by a killed run, its pid since reused) from stopping an unrelated process.
# $1 (int): the pid. $2 (path): DIR.
pid_in_run_dir() {
    local pid="$1" dir="$2" cwd
    cwd="$(readlink "/proc/${pid}/cwd" 2>/dev/null)" || cwd=""
    [[ -n "${cwd}" && "${cwd}" == "$(cd "${dir}" 2>/dev/null && pwd -P)" ]] && return 0
    { tr '\0' ' ' <"/proc/${pid}/cmdline"; } 2>/dev/null | grep -qF -- "${dir}"
}

# Stops a process recorded in DIR/pids/NAME.pid: SIGTERM, then SIGKILL after a time-out. Sets STOPPED_EXIT_CODE to
# the process's exit status when it is a child of this shell (otherwise to an empty string).
# $1 (path): DIR. $2 (string): NAME. $3 (seconds, optional): time-out, default 15.
# Returns 1 when the process had to be killed.
stop_process() {
    local dir="$1" name="$2" timeout="${3:-15}" pid tries rc=0 killed=0
    # Read by callers (Tests/EndToEnd/).
    # shellcheck disable=SC2034
    STOPPED_EXIT_CODE=""
    pid="$(saved_pid "${dir}" "${name}")"
    [[ -n "${pid}" ]] || return 0
    # (Alive again after the check: a process that has just exited is not a stranger.)
    if pid_alive "${pid}" && ! pid_in_run_dir "${pid}" "${dir}" && pid_alive "${pid}"; then
        warn "pid ${pid} in ${dir}/pids/${name}.pid is not ours any more; forgetting it"
        rm -f "${dir}/pids/${name}.pid"
        return 0
    fi
    if pid_alive "${pid}"; then
        kill -TERM "${pid}" 2>/dev/null || true
        tries=$((timeout * 10))
        while ((tries-- > 0)) && pid_alive "${pid}"; do
            sleep 0.1
        done
        if pid_alive "${pid}"; then
            warn "${name} (pid ${pid}) did not stop within ${timeout} s of SIGTERM; sending SIGKILL"
            kill -KILL "${pid}" 2>/dev/null || true
            killed=1
        fi
    fi
    wait "${pid}" 2>/dev/null || rc=$?
    # 127: not a child of this shell, so its status is unknown.
    if [[ ${rc} -ne 127 ]]; then
        # shellcheck disable=SC2034
        STOPPED_EXIT_CODE="${rc}"
    fi
    rm -f "${dir}/pids/${name}.pid"
    return "${killed}"
}

# Starts the mock LLM server (mock/anthropic_mock.py) on a free port, or on a given one (a restart), and exports
# MOCK_PORT.
# $1 (path): run directory. $2 (int, optional): the port, default 0 (a free one). Env: MOCK_LATENCY (seconds,
# default 1); MOCK_MARKDOWN=1 to answer prompts without a [mock:...] marker with the demo's Markdown answer
# (scripts/run; the tests keep the exact "Mock reply to: …").
start_mock() {
    local dir="$1" port="${2:-0}" pid extra=()
    LONGHAUL_RUN_DIR="${dir}"
    mkdir -p "${dir}"
    rm -f "${dir}/mock.port"
    if [[ "${MOCK_MARKDOWN:-0}" == 1 ]]; then
        extra+=(--markdown)
    fi
    python3 "${LONGHAUL_ROOT}/mock/anthropic_mock.py" --host 127.0.0.1 --port "${port}" --port-file "${dir}/mock.port" \
        --latency "${MOCK_LATENCY:-1}" "${extra[@]}" >>"${dir}/mock.log" 2>&1 &
    pid=$!
    _save_pid "${dir}" mock "${pid}"
    if ! wait_until_alive "${pid}" 30 test -s "${dir}/mock.port"; then
        error "the mock LLM did not start; its log:"
        tail -n 20 "${dir}/mock.log" >&2 || true
        return 1
    fi
    MOCK_PORT="$(cat "${dir}/mock.port")"
    export MOCK_PORT
}

# Stops the mock LLM server.
# $1 (path, optional): run directory, default LONGHAUL_RUN_DIR.
stop_mock() {
    stop_process "${1:-${LONGHAUL_RUN_DIR:?}}" mock 10 || true
}

# Starts the backend under spawn-fcgi (listen socket on fd 0), in DIR, appending its output to DIR/backend.log.
# Waits until the socket exists and the process is still alive.
# $1 (path): run directory. $2 (path): socket. $3 (path): the longhaul binary. $@ (rest): extra longhaul flags.
start_backend() {
    local dir="$1" socket="$2" bin="$3" pid name="${BACKEND_NAME:-backend}"
    shift 3
    LONGHAUL_RUN_DIR="${dir}"
    [[ -x "${bin}" ]] || {
        error "backend binary not found or not executable: ${bin}"
        return 1
    }
    mkdir -p "${dir}"
    rm -f "${socket}"
    # Only nginx may reach the socket (libfcgi parses its binary protocol: REFERENCE.md 3.3). As root, nginx's
    # workers run as www-data (render_nginx): the socket is root:www-data 0660. Otherwise owner only.
    local socket_access=(-M 0600)
    if [[ ${EUID} -eq 0 ]] && getent group www-data >/dev/null; then
        socket_access=(-M 0660 -G www-data)
    fi
    spawn-fcgi -n -d "${dir}" -s "${socket}" "${socket_access[@]}" -- "${bin}" "$@" >>"${dir}/${name}.log" 2>&1 &
    pid=$!
    _save_pid "${dir}" "${name}" "${pid}"
    if ! wait_until_alive "${pid}" 30 test -S "${socket}"; then
        error "the backend did not start; the end of its log:"
        tail -n 20 "${dir}/${name}.log" >&2 || true
        return 1
    fi
    # spawn-fcgi creates the socket before it runs the program: give a program that fails at once time to do so.
    sleep 0.3
    if ! pid_alive "${pid}"; then
        error "the backend exited right after starting; the end of its log:"
        tail -n 20 "${dir}/${name}.log" >&2 || true
        return 1
    fi
}

# Stops the backend with SIGTERM (SIGKILL after the time-out); sets STOPPED_EXIT_CODE.
# $1 (path, optional): run directory, default LONGHAUL_RUN_DIR. $2 (seconds, optional): time-out, default 15.
# Returns 1 when it had to be killed.
stop_backend() {
    stop_process "${1:-${LONGHAUL_RUN_DIR:?}}" "${BACKEND_NAME:-backend}" "${2:-15}"
}

# Renders DIR/nginx.conf (from nginx/longhaul-dev.conf.template) and DIR/snippets/ for a development or test nginx
# serving https://localhost:PORT with DIR/cert.pem, static files from static/ and the backend on SOCKET.
# $1 (path): run directory (absolute). $2 (int): HTTPS port. $3: the backend's unix socket, or several separated by
# spaces (processes sharing a Redis store).
render_nginx() {
    local dir="$1" port="$2" socket="$3"
    local static_root="${LONGHAUL_ROOT}/static" user_directive listen_v6 conf_dir snippet
    LONGHAUL_RUN_DIR="${dir}"
    mkdir -p "${dir}/snippets" "${dir}/tmp"
    conf_dir="$(nginx_conf_dir)"
    cp "${conf_dir}/fastcgi_params" "${conf_dir}/mime.types" "${dir}/"

    if [[ ${EUID} -eq 0 ]]; then
        # As root the master drops its workers to www-data, which must reach the socket and the static files.
        chmod 0755 "${dir}"
        user_directive="user www-data;"
        if ! runuser -u www-data -- test -x "${dir}" 2>/dev/null; then
            warn "www-data cannot reach ${dir}: nginx workers will run as root (development only)"
            user_directive="user root;"
        elif ! runuser -u www-data -- test -r "${static_root}/app.css" 2>/dev/null; then
            log "www-data cannot read ${static_root}: serving a copy from ${dir}/static"
            rm -rf "${dir}/static"
            cp -R "${static_root}" "${dir}/static"
            chmod -R a+rX "${dir}/static"
            static_root="${dir}/static"
        fi
    else
        user_directive="# Not started as root: the workers run as $(id -un)."
    fi
    if grep -q '^00000000000000000000000000000001 ' /proc/net/if_inet6 2>/dev/null; then
        listen_v6="listen [::1]:${port} ssl http2;"
    else
        listen_v6="# No IPv6 loopback on this machine."
    fi

    # Several backend processes: $3 lists their sockets, separated by spaces.
    local upstream_servers="" one_socket
    for one_socket in ${socket}; do
        upstream_servers+="server unix:${one_socket}; "
    done
    local values=(
        "HTTPS_PORT=${port}" "SOCKET=${socket}" "UPSTREAM_SERVERS=${upstream_servers}" "STATIC_ROOT=${static_root}"
        "RUN_DIR=${dir}"
        "CERT=${dir}/cert.pem" "KEY=${dir}/key.pem" "USER_DIRECTIVE=${user_directive}" "LISTEN_V6=${listen_v6}"
    )
    render_template "${LONGHAUL_ROOT}/nginx/longhaul-dev.conf.template" "${dir}/nginx.conf" "${values[@]}" ||
        return 1
    for snippet in "${LONGHAUL_ROOT}"/nginx/snippets/*.conf; do
        render_template "${snippet}" "${dir}/snippets/${snippet##*/}" "${values[@]}" || return 1
    done
    printf '%s\n' "${port}" >"${dir}/nginx.port"
}

# Checks DIR/nginx.conf with `nginx -t`, starts nginx in the foreground (in the background of this shell) and
# waits until https://localhost:PORT/static/app.css answers over verified TLS.
# $1 (path): run directory, as given to render_nginx.
start_nginx() {
    local dir="$1" port pid
    LONGHAUL_RUN_DIR="${dir}"
    port="$(cat "${dir}/nginx.port")"
    if ! nginx -t -q -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" >>"${dir}/nginx.log" 2>&1; then
        error "nginx -t rejected ${dir}/nginx.conf:"
        tail -n 20 "${dir}/nginx.log" >&2 || true
        return 1
    fi
    nginx -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" -g 'daemon off;' >>"${dir}/nginx.log" 2>&1 &
    pid=$!
    _save_pid "${dir}" nginx "${pid}"
    if ! wait_until_alive "${pid}" 30 curl -fsS -o /dev/null --max-time 5 --cacert "${dir}/cert.pem" \
        "https://localhost:${port}/static/app.css"; then
        error "nginx did not answer on https://localhost:${port}/; its error log:"
        tail -n 20 "${dir}/error.log" "${dir}/nginx.log" >&2 || true
        return 1
    fi
}

# Stops nginx (fast shutdown).
# $1 (path, optional): run directory, default LONGHAUL_RUN_DIR.
stop_nginx() {
    stop_process "${1:-${LONGHAUL_RUN_DIR:?}}" nginx 10 || true
}

# Re-reads DIR/nginx.conf (after render_nginx) in the running nginx, and waits until the old workers are gone.
# $1 (path): run directory.
reload_nginx() {
    local dir="$1" master old_workers
    master="$(saved_pid "${dir}" nginx)"
    [[ -n "${master}" ]] || return 1
    nginx -t -q -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" >>"${dir}/nginx.log" 2>&1 || return 1
    old_workers="$(pgrep -P "${master}" | tr '\n' ' ')"
    kill -HUP "${master}"
    # shellcheck disable=SC2086 # one word per pid
    wait_until 20 all_gone ${old_workers}
}

# Succeeds when none of the given processes is alive. $@: pids.
all_gone() {
    local pid
    for pid in "$@"; do
        pid_alive "${pid}" && return 1
    done
    return 0
}

# Starts a private redis-server on a free loopback port, its data (append-only, fsync always) in DIR, and exports
# REDIS_PORT and REDIS_URL. A second call after stop_redis restarts it on the same port with the same data.
# $1 (path): run directory.
start_redis() {
    local dir="$1" pid
    LONGHAUL_RUN_DIR="${dir}"
    mkdir -p "${dir}"
    [[ -s "${dir}/redis.port" ]] || free_port >"${dir}/redis.port"
    REDIS_PORT="$(cat "${dir}/redis.port")"
    (cd "${dir}" && exec redis-server --bind 127.0.0.1 --port "${REDIS_PORT}" --dir "${dir}" --save "" \
        --appendonly yes --appendfsync always --daemonize no --logfile "${dir}/redis.log") &
    pid=$!
    _save_pid "${dir}" redis "${pid}"
    if ! wait_until_alive "${pid}" 20 redis-cli -p "${REDIS_PORT}" ping; then
        error "redis-server did not start; its log:"
        tail -n 20 "${dir}/redis.log" >&2 || true
        return 1
    fi
    REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
    export REDIS_PORT REDIS_URL
}

# Stops the redis-server start_redis started. $1 (path): run directory.
stop_redis() {
    stop_process "${1:-${LONGHAUL_RUN_DIR:?}}" redis 10
}

# The browser tests' needs: Debian's chromium and the pinned Playwright from PyPI (which drives it; Playwright's
# own browser downloads are not used).
readonly LONGHAUL_PLAYWRIGHT_VERSION=1.65.2
ensure_browser() {
    if ! pkg_installed chromium; then
        log "installing chromium (for the browser tests)"
        run_as_root apt-get update -qq || return 1
        run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ||
            return 1
    fi
    if [[ "$(python3 -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null)" != \
        "${LONGHAUL_PLAYWRIGHT_VERSION}" ]]; then
        log "installing playwright ${LONGHAUL_PLAYWRIGHT_VERSION} (for the browser tests)"
        python3 -m pip install -q --root-user-action=ignore "playwright==${LONGHAUL_PLAYWRIGHT_VERSION}" ||
            python3 -m pip install -q --break-system-packages "playwright==${LONGHAUL_PLAYWRIGHT_VERSION}" || return 1
    fi
}

# The OpenAPI tools (jsonschema for the end-to-end suite's answer checks, schemathesis for test_70), every package
# pinned in Tests/EndToEnd/openapi-requirements.txt, live in a virtual environment outside the repository:
# LONGHAUL_CACHE_DIR (default ~/.cache/longhaul)/openapi-venv-CHECKSUM, named after the requirements' checksum so that
# a changed pin gets a fresh one.
readonly LONGHAUL_OPENAPI_REQUIREMENTS="${LONGHAUL_ROOT}/Tests/EndToEnd/openapi-requirements.txt"

# Prints the directory of the OpenAPI tools' virtual environment.
openapi_venv() {
    local cache="${LONGHAUL_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/longhaul}" sum
    sum="$(sha256_of "${LONGHAUL_OPENAPI_REQUIREMENTS}")"
    printf '%s/openapi-venv-%s\n' "${cache}" "${sum:0:12}"
}

# Prints the Python of the OpenAPI tools' virtual environment (it may not exist yet: see ensure_openapi_tools).
openapi_python() {
    printf '%s/bin/python\n' "$(openapi_venv)"
}

# Installs the pinned OpenAPI tools into their virtual environment; does nothing when it is complete. Debian's
# python3 needs python3-venv for `python3 -m venv`: installed when missing.
ensure_openapi_tools() {
    local venv
    venv="$(openapi_venv)"
    [[ -f "${venv}/.complete" && -x "${venv}/bin/st" ]] && return 0
    log "installing the OpenAPI tools (${LONGHAUL_OPENAPI_REQUIREMENTS##*/}) into ${venv}"
    rm -rf "${venv}"
    mkdir -p "${venv%/*}"
    if ! python3 -m venv "${venv}" >/dev/null 2>&1; then
        rm -rf "${venv}"
        log "installing python3-venv (for the OpenAPI tools)"
        run_as_root apt-get update -qq || return 1
        run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv ||
            return 1
        python3 -m venv "${venv}" || return 1
    fi
    "${venv}/bin/python" -m pip install -q --disable-pip-version-check -r "${LONGHAUL_OPENAPI_REQUIREMENTS}" || {
        error "pip could not install ${LONGHAUL_OPENAPI_REQUIREMENTS}"
        rm -rf "${venv}"
        return 1
    }
    touch "${venv}/.complete"
}

# Stops everything started in the run directory, in reverse order; safe to call again, and from traps.
# $1 (path, optional): run directory, default LONGHAUL_RUN_DIR (does nothing when neither is set).
stop_all() {
    local dir="${1:-${LONGHAUL_RUN_DIR:-}}"
    [[ -n "${dir}" && -d "${dir}/pids" ]] || return 0
    local pid_file
    stop_process "${dir}" nginx 10 || true
    for pid_file in "${dir}"/pids/backend*.pid; do
        [[ -e "${pid_file}" ]] || continue
        pid_file="${pid_file##*/}"
        stop_process "${dir}" "${pid_file%.pid}" 20 || true
    done
    stop_process "${dir}" mock 10 || true
    stop_process "${dir}" redis 10 || true
}
