#!/usr/bin/env bash
# shellcheck shell=bash
#
# Tests/Cluster/lib.sh: builds and drives the cluster of Tests/Cluster/run.sh. Sourced by run.sh; not meant to be run.
#
# The cluster: one network namespace per host, each with a veth pair to a bridge that lives in its own namespace
# (the "switch"), so the root namespace is never touched. Addresses in CL_NET.0/24, used by these namespaces only.
#   redis-a  .11  redis-server (master at the start) and a sentinel
#   redis-b  .12  redis-server (replica at the start) and a sentinel
#   llm      .20  the mock LLM (mock/anthropic_mock.py --call-log) and the third sentinel
#   b1..b3   .31-.33  one longhaul each (--socket) with its own nginx over TLS in front (port 443)
#   client   .40  the load: cluster.py submit/wait and curl -N streams
# Every process is started through cl_spawn, which records its pid in CL_DIR/pids/NAME.pid; cl_teardown kills
# them, then any process left in one of this run's namespaces (by pid, from `ip netns pids`), then deletes the
# namespaces. Every wait is a bounded poll.
#
# Globals set by run.sh before use: CL_DIR (run directory, absolute), CL_BIN (the longhaul binary), CL_PREFIX
# (unique namespace name prefix for this run), CL_ROOT (repository root).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    printf 'Usage: source Tests/Cluster/lib.sh (from Tests/Cluster/run.sh)\n'
    exit 0
fi

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

# --- Addresses and names ----------------------------------------------------------------------------------------------

readonly CL_NET="10.231.7"
readonly CL_HOSTS=(redis-a redis-b llm b1 b2 b3 client)
declare -A CL_HOST_IP=(
    [redis-a]="${CL_NET}.11" [redis-b]="${CL_NET}.12" [llm]="${CL_NET}.20"
    [b1]="${CL_NET}.31" [b2]="${CL_NET}.32" [b3]="${CL_NET}.33" [client]="${CL_NET}.40"
)
readonly CL_BACKENDS=(b1 b2 b3)
readonly CL_MOCK_PORT=8080
readonly CL_MASTER_NAME="lhc"
readonly CL_SENTINELS="${CL_NET}.11:26379,${CL_NET}.12:26379,${CL_NET}.20:26379"

# The backends' settings (the suite's fixed cluster facts).
readonly CL_LEASE=3
readonly CL_LIMIT=6
readonly CL_API_KEY="sk-cluster-test-not-a-secret"

CL_PASSED=0
CL_FAILED=0
# The last `NOTE ...` line an analyser printed (a summary for the results table; read by run.sh).
# shellcheck disable=SC2034
CL_LAST_NOTE=""
CL_FAILURES=()

# Prints the namespace name of a host. $1: host.
cl_ns() {
    printf '%s-%s' "${CL_PREFIX}" "$1"
}

# Prints the address of a host. $1: host.
cl_ip() {
    printf '%s' "${CL_HOST_IP[$1]}"
}

# Prints "IP=host,..." for the analysers' notes.
cl_host_map() {
    local h out=""
    for h in "${CL_HOSTS[@]}"; do out+="$(cl_ip "${h}")=${h},"; done
    printf '%s' "${out%,}"
}

# Prints the front ends (the backends' nginx addresses), comma-separated. $@ (optional): only these backends.
cl_fronts() {
    local b out="" list=("$@")
    [[ ${#list[@]} -gt 0 ]] || list=("${CL_BACKENDS[@]}")
    for b in "${list[@]}"; do out+="$(cl_ip "${b}"),"; done
    printf '%s' "${out%,}"
}

# Runs a command inside a host's namespace, in the foreground. $1: host. $@ (rest): the command.
cl_exec() {
    local host="$1"
    shift
    ip netns exec "$(cl_ns "${host}")" "$@"
}

# --- Results ----------------------------------------------------------------------------------------------------------

cl_pass() {
    CL_PASSED=$((CL_PASSED + 1))
    printf 'PASS %s\n' "$1"
}

cl_fail() {
    local reason="${2//$'\n'/ }"
    CL_FAILED=$((CL_FAILED + 1))
    CL_FAILURES+=("$1")
    printf 'FAIL %s: %s\n' "$1" "${reason:0:500}"
}

# Passes when a command succeeds. $1: name. $2: reason on failure. $@ (rest): the command.
cl_check() {
    local name="$1" reason="$2"
    shift 2
    if "$@" >/dev/null 2>&1; then cl_pass "${name}"; else cl_fail "${name}" "${reason}"; fi
}

# Runs an analyser (cluster.py) and counts its PASS/FAIL lines into the totals; the lines are printed as they are.
# An analyser that fails (a crash, bad arguments) is a failed check. $@: cluster.py arguments.
cl_analyse() {
    local out line rc=0
    out="$(python3 "${CL_ROOT}/Tests/Cluster/cluster.py" "$@" 2>"${CL_DIR}/logs/analyser.err")" || rc=$?
    cat "${CL_DIR}/logs/analyser.err" >>"${CL_DIR}/logs/analysers.err"
    if [[ ${rc} -ne 0 ]]; then
        cl_fail "analyser cluster.py $1${SC:+ (${SC})} runs" "exit ${rc}: $(tail -n 2 "${CL_DIR}/logs/analyser.err")"
    fi
    while IFS= read -r line; do
        case "${line}" in
            "PASS "*)
                CL_PASSED=$((CL_PASSED + 1))
                printf '%s\n' "${line}"
                ;;
            "FAIL "*)
                CL_FAILED=$((CL_FAILED + 1))
                CL_FAILURES+=("${line#FAIL }")
                printf '%s\n' "${line}"
                ;;
            "NOTE "*)
                # shellcheck disable=SC2034 # read by run.sh
                CL_LAST_NOTE="${line#NOTE }"
                printf '%s\n' "${line}"
                ;;
            *) [[ -z "${line}" ]] || printf '%s\n' "${line}" ;;
        esac
    done <<<"${out}"
}

# --- Processes --------------------------------------------------------------------------------------------------------

# Starts a command inside a host's namespace in the background, its output appended to CL_DIR/logs/NAME.log, and
# records its pid (ip netns exec execs the command: the pid is the command's own). $1: name. $2: host.
# $@ (rest): the command.
cl_spawn() {
    local name="$1" host="$2"
    shift 2
    ip netns exec "$(cl_ns "${host}")" "$@" >>"${CL_DIR}/logs/${name}.log" 2>&1 </dev/null &
    printf '%s\n' "$!" >"${CL_DIR}/pids/${name}.pid"
    # Out of the job table: bash then says nothing ("Killed ...") when the suite kills it on purpose.
    disown "$!"
}

# Prints the recorded pid of a process (empty when none). $1: name.
cl_pid() {
    [[ -s "${CL_DIR}/pids/$1.pid" ]] && cat "${CL_DIR}/pids/$1.pid"
    return 0
}

# Records the pid of a helper started in the root namespace (a stream client loop), for the teardown. $1: pid.
cl_track() {
    printf '%s\n' "$1" >>"${CL_DIR}/pids/helpers.list"
}

# Kills a recorded process with a signal and waits (bounded) until it is gone. $1: name. $2: signal (default KILL).
cl_kill() {
    local name="$1" sig="${2:-KILL}" pid
    pid="$(cl_pid "${name}")"
    [[ -n "${pid}" ]] || return 0
    kill -CONT "${pid}" 2>/dev/null || true
    kill -"${sig}" "${pid}" 2>/dev/null || true
    if ! wait_until 15 process_gone "${pid}"; then
        kill -KILL "${pid}" 2>/dev/null || true
        wait_until 5 process_gone "${pid}" || true
    fi
    wait "${pid}" 2>/dev/null || true
    rm -f "${CL_DIR}/pids/${name}.pid"
}

# Succeeds when a process has exited (a zombie counts as exited). $1: pid.
process_gone() {
    ! pid_alive "$1"
}

# Stops everything this run started and deletes its namespaces. Safe to call twice; used by the EXIT trap.
cl_teardown() {
    local file pid host ns pids=()
    [[ -n "${CL_DIR:-}" && -d "${CL_DIR}/pids" ]] || return 0
    for file in "${CL_DIR}"/pids/*.pid; do
        [[ -e "${file}" ]] || continue
        pid="$(cat "${file}")"
        [[ -n "${pid}" ]] && pids+=("${pid}")
    done
    if [[ -s "${CL_DIR}/pids/helpers.list" ]]; then
        while IFS= read -r pid; do [[ -n "${pid}" ]] && pids+=("${pid}"); done <"${CL_DIR}/pids/helpers.list"
    fi
    # Anything else still running in one of this run's namespaces (nginx workers, curl): ours by construction.
    for host in "${CL_HOSTS[@]}"; do
        ns="$(cl_ns "${host}")"
        if ip netns list 2>/dev/null | grep -qw -- "${ns}"; then
            while IFS= read -r pid; do [[ -n "${pid}" ]] && pids+=("${pid}"); done < <(ip netns pids "${ns}" 2>/dev/null)
        fi
    done
    for pid in "${pids[@]}"; do
        kill -CONT "${pid}" 2>/dev/null || true
        kill -TERM "${pid}" 2>/dev/null || true
    done
    local tries=30
    while ((tries-- > 0)); do
        local alive=0
        for pid in "${pids[@]}"; do pid_alive "${pid}" && alive=1; done
        [[ ${alive} -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        kill -KILL "${pid}" 2>/dev/null || true
    done
    # Second sweep: a process that a killed one forked meanwhile.
    for host in "${CL_HOSTS[@]}" sw; do
        ns="$(cl_ns "${host}")"
        if ip netns list 2>/dev/null | grep -qw -- "${ns}"; then
            while IFS= read -r pid; do
                [[ -n "${pid}" ]] && kill -KILL "${pid}" 2>/dev/null
            done < <(ip netns pids "${ns}" 2>/dev/null)
            ip netns del "${ns}" 2>/dev/null || warn "could not delete namespace ${ns}"
        fi
    done
    rm -f "${CL_DIR}"/pids/*.pid "${CL_DIR}/pids/helpers.list"
}

# --- The network ------------------------------------------------------------------------------------------------------

# Creates the switch namespace with its bridge, then one namespace per host with a veth pair to the bridge (both
# ends created inside the switch namespace, then one moved into the host: nothing appears in the root namespace).
cl_network_up() {
    local sw host ns
    sw="$(cl_ns sw)"
    ip netns add "${sw}" || return 1
    ip -n "${sw}" link set lo up
    ip -n "${sw}" link add br0 type bridge || return 1
    ip -n "${sw}" link set br0 up
    for host in "${CL_HOSTS[@]}"; do
        ns="$(cl_ns "${host}")"
        ip netns add "${ns}" || return 1
        ip -n "${sw}" link add "p-${host}" type veth peer name eth0 netns "${ns}" || return 1
        ip -n "${sw}" link set "p-${host}" master br0 || return 1
        ip -n "${sw}" link set "p-${host}" up
        ip -n "${ns}" addr add "$(cl_ip "${host}")/24" dev eth0 || return 1
        ip -n "${ns}" link set eth0 up
        ip -n "${ns}" link set lo up
    done
}

# Succeeds when one host reaches another's TCP port (bash's /dev/tcp inside the namespace, 2 s at most).
# $1: from host. $2: to host. $3: port.
cl_reaches() {
    cl_exec "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$(cl_ip "$2")/$3" 2>/dev/null
}

# The iptables that works here (nft or legacy), found once.
CL_IPTABLES=""
cl_find_iptables() {
    local candidate
    for candidate in iptables iptables-nft iptables-legacy; do
        command -v "${candidate}" >/dev/null 2>&1 || continue
        if cl_exec client "${candidate}" -S OUTPUT >/dev/null 2>&1; then
            CL_IPTABLES="${candidate}"
            return 0
        fi
    done
    return 1
}

# Drops every packet between a backend host and the Redis hosts (redis-a, redis-b, and the sentinel on llm; the
# mock on llm stays reachable). $1: backend host.
cl_partition() {
    local host="$1" redis
    for redis in redis-a redis-b; do
        cl_exec "${host}" "${CL_IPTABLES}" -I OUTPUT -d "$(cl_ip "${redis}")" -j DROP || return 1
        cl_exec "${host}" "${CL_IPTABLES}" -I INPUT -s "$(cl_ip "${redis}")" -j DROP || return 1
    done
    cl_exec "${host}" "${CL_IPTABLES}" -I OUTPUT -d "$(cl_ip llm)" -p tcp --dport 26379 -j DROP || return 1
    cl_exec "${host}" "${CL_IPTABLES}" -I INPUT -s "$(cl_ip llm)" -p tcp --sport 26379 -j DROP || return 1
}

# Heals cl_partition. $1: backend host.
cl_heal() {
    cl_exec "$1" "${CL_IPTABLES}" -F INPUT
    cl_exec "$1" "${CL_IPTABLES}" -F OUTPUT
}

# --- Certificates -----------------------------------------------------------------------------------------------------

# A CA and one server certificate for the three front ends' addresses (and 127.0.0.1), in CL_DIR/tls/.
cl_make_certs() {
    local dir="${CL_DIR}/tls" san="IP:127.0.0.1" b
    mkdir -p "${dir}"
    for b in "${CL_BACKENDS[@]}"; do san+=",IP:$(cl_ip "${b}")"; done
    (
        set -e
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 2 \
            -subj "/CN=longhaul cluster suite CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "${dir}/ca-key.pem" -out "${dir}/ca.pem"
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -subj "/CN=longhaul-cluster" \
            -keyout "${dir}/key.pem" -out "${dir}/server.csr"
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "${san}" >"${dir}/ext.cnf"
        openssl x509 -req -in "${dir}/server.csr" -CA "${dir}/ca.pem" -CAkey "${dir}/ca-key.pem" -CAcreateserial \
            -days 2 -sha256 -extfile "${dir}/ext.cnf" -out "${dir}/cert.pem"
        chmod 0644 "${dir}/ca.pem" "${dir}/cert.pem"
    ) >>"${CL_DIR}/logs/openssl.log" 2>&1
}

# --- Redis and Sentinel -----------------------------------------------------------------------------------------------

# Starts redis-server on a host (port 6379, its files in CL_DIR/HOST/). $1: host. $2: persist (appendonly yes,
# appendfsync always) or nopersist (no AOF, no RDB: its files are deleted first, as on a machine that lost them).
# $3 (optional): a master address to replicate.
cl_start_redis() {
    local host="$1" mode="$2" master="${3:-}" dir="${CL_DIR}/${1}" args
    mkdir -p "${dir}"
    args=(redis-server --bind "$(cl_ip "${host}")" 127.0.0.1 --port 6379 --protected-mode no --dir "${dir}"
        --save "" --daemonize no --logfile "${dir}/redis.log")
    if [[ "${mode}" == persist ]]; then
        args+=(--appendonly yes --appendfsync always)
    else
        rm -rf "${dir}/appendonlydir" "${dir}/dump.rdb"
        args+=(--appendonly no)
    fi
    [[ -z "${master}" ]] || args+=(--replicaof "${master}" 6379)
    cl_spawn "redis-${host}" "${host}" "${args[@]}"
    wait_until 15 cl_exec "${host}" redis-cli -p 6379 ping
}

# Starts a sentinel on a host (port 26379), watching the master CL_MASTER_NAME at redis-a with quorum 2.
# $1: host.
cl_start_sentinel() {
    local host="$1" dir="${CL_DIR}/${1}/sentinel"
    mkdir -p "${dir}"
    cat >"${dir}/sentinel.conf" <<EOF
port 26379
bind $(cl_ip "${host}") 127.0.0.1
protected-mode no
daemonize no
dir ${dir}
logfile ${dir}/sentinel.log
sentinel monitor ${CL_MASTER_NAME} $(cl_ip redis-a) 6379 2
sentinel down-after-milliseconds ${CL_MASTER_NAME} 2000
sentinel failover-timeout ${CL_MASTER_NAME} 10000
sentinel parallel-syncs ${CL_MASTER_NAME} 1
EOF
    cl_spawn "sentinel-${host}" "${host}" redis-server "${dir}/sentinel.conf" --sentinel
    wait_until 15 cl_exec "${host}" redis-cli -p 26379 ping
}

# Prints the current master's address as the sentinel on llm sees it.
cl_master_ip() {
    cl_exec llm redis-cli -p 26379 SENTINEL get-master-addr-by-name "${CL_MASTER_NAME}" 2>/dev/null | head -n 1
}

# Prints the host name of the current master (redis-a or redis-b), empty when unknown.
cl_master_host() {
    local ip
    ip="$(cl_master_ip)"
    case "${ip}" in
        "$(cl_ip redis-a)") printf 'redis-a' ;;
        "$(cl_ip redis-b)") printf 'redis-b' ;;
    esac
}

# Succeeds when a Redis host reports a role. $1: host. $2: master or slave.
cl_redis_role_is() {
    cl_exec "$1" redis-cli -p 6379 role 2>/dev/null | head -n 1 | grep -qx "$2"
}

# Succeeds when the master has a replica whose link is up (master_link_status on the other host). $1: replica host.
cl_replica_synced() {
    cl_exec "$1" redis-cli -p 6379 info replication 2>/dev/null | tr -d '\r' | grep -qx 'master_link_status:up'
}

# Succeeds when every sentinel names the given address as the master. $1: IP.
cl_sentinels_agree() {
    local host
    for host in redis-a redis-b llm; do
        cl_exec "${host}" redis-cli -p 26379 SENTINEL get-master-addr-by-name "${CL_MASTER_NAME}" 2>/dev/null |
            head -n 1 | grep -qx "$1" || return 1
    done
}

# --- The mock LLM -----------------------------------------------------------------------------------------------------

cl_start_mock() {
    cl_spawn mock llm python3 "${CL_ROOT}/mock/anthropic_mock.py" --host "$(cl_ip llm)" --port "${CL_MOCK_PORT}" \
        --latency 1.5 --call-log "${CL_DIR}/calls.jsonl"
    wait_until 20 cl_mock_get health
}

# GET or POST a /mock/ path from the client host. $1: path after /mock/. $2 (optional): method.
cl_mock_get() {
    cl_exec client curl -sS --max-time 5 -X "${2:-GET}" "http://$(cl_ip llm):${CL_MOCK_PORT}/mock/$1"
}

# Prints one field of /mock/stats (-1 when unreadable). $1: the field.
cl_mock_stat() {
    cl_mock_get stats 2>/dev/null | python3 -c 'import json,sys
try: print(json.load(sys.stdin)[sys.argv[1]])
except Exception: print(-1)' "$1"
}

# --- Backends and their nginx -----------------------------------------------------------------------------------------

# The store URL the backends get and what kind it is (sentinel, direct, given), set by cl_choose_store.
# shellcheck disable=SC2034 # read by run.sh
CL_STORE=""
# shellcheck disable=SC2034
CL_STORE_KIND=""
# 1 when the binary offers --redis-wait-replicas (then given 1).
CL_WAIT_REPLICAS=0

# Chooses the store URL and optional flags from what the binary offers: Sentinel when its --help mentions
# redis+sentinel (the suite's target), otherwise the fallback of a direct URL to redis-a, which cannot follow a
# failover. --redis-wait-replicas 1 when the binary has it.
# shellcheck disable=SC2034 # CL_STORE_KIND is read by run.sh
cl_choose_store() {
    local help
    help="$("${CL_BIN}" --help 2>&1 || true)"
    if [[ -n "${CLUSTER_STORE:-}" ]]; then
        CL_STORE="${CLUSTER_STORE}"
        CL_STORE_KIND="given"
    elif [[ "${help}" == *"redis+sentinel"* ]]; then
        CL_STORE="redis+sentinel://${CL_SENTINELS}/${CL_MASTER_NAME}/0"
        CL_STORE_KIND="sentinel"
    else
        CL_STORE="redis://$(cl_ip redis-a):6379/0"
        CL_STORE_KIND="direct"
    fi
    CL_WAIT_REPLICAS=0
    if [[ "${help}" == *"--redis-wait-replicas"* ]]; then
        CL_WAIT_REPLICAS=1
    fi
}

# The libfaketime preload for multithreaded programs.
cl_libfaketime() {
    local lib
    for lib in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
        [[ -f "${lib}" ]] && {
            printf '%s' "${lib}"
            return 0
        }
    done
    return 1
}

# Starts longhaul on a backend host with --socket in CL_DIR/HOST/. $1: host. $2 (optional): a clock offset for
# libfaketime in seconds ("+60", "-60"). It shifts CLOCK_MONOTONIC by the same constant as the wall clock: harmless
# (a monotonic clock means nothing across machines, only its differences count) and needed, because with
# FAKETIME_DONT_FAKE_MONOTONIC=1 libfaketime 0.9.10 turns the timed waits of a process 60 s ahead into a busy loop
# (seen: ~1 s of CPU per second with the in-memory store, no Redis at all), which is libfaketime's bug, not ours.
# The settings are given as flags; under libfaketime as the same settings' environment variables instead, because
# the Swift binary loses its command-line arguments when libfaketime is preloaded (seen with Debian 12's
# libfaketime 0.9.10: `longhaul --socket X` then fails with "no listen socket on fd 0").
cl_start_backend() {
    local host="$1" skew="${2:-}" dir="${CL_DIR}/${1}" envs setting flag var value flags=()
    mkdir -p "${dir}"
    rm -f "${dir}/longhaul.sock"
    envs=(env -i PATH="/usr/sbin:/usr/bin:/sbin:/bin" HOME="${dir}" ANTHROPIC_API_KEY="${CL_API_KEY}")
    local settings=(
        "--socket LONGHAUL_SOCKET ${dir}/longhaul.sock"
        "--socket-mode LONGHAUL_SOCKET_MODE 0600"
        "--store LONGHAUL_STORE ${CL_STORE}"
        "--lease-timeout LONGHAUL_LEASE_TIMEOUT ${CL_LEASE}"
        "--max-in-flight LONGHAUL_MAX_IN_FLIGHT ${CL_LIMIT}"
        "--max-attempts LONGHAUL_MAX_ATTEMPTS 5"
        "--base-url ANTHROPIC_BASE_URL http://$(cl_ip llm):${CL_MOCK_PORT}"
        "--result-ttl LONGHAUL_RESULT_TTL 900"
        "--log-level LONGHAUL_LOG_LEVEL debug"
    )
    [[ ${CL_WAIT_REPLICAS} -eq 0 ]] || settings+=("--redis-wait-replicas LONGHAUL_REDIS_WAIT_REPLICAS 1")
    for setting in "${settings[@]}"; do
        read -r flag var value <<<"${setting}"
        if [[ -n "${skew}" ]]; then envs+=("${var}=${value}"); else flags+=("${flag}" "${value}"); fi
    done
    if [[ -n "${skew}" ]]; then
        envs+=(LD_PRELOAD="$(cl_libfaketime)" FAKETIME="${skew}")
    fi
    printf '%s\n' "${skew}" >"${dir}/skew"
    (
        cd "${dir}" || exit 1
        exec ip netns exec "$(cl_ns "${host}")" "${envs[@]}" "${CL_BIN}" "${flags[@]}"
    ) >>"${CL_DIR}/logs/longhaul-${host}.log" 2>&1 </dev/null &
    local pid="$!"
    printf '%s\n' "${pid}" >"${CL_DIR}/pids/longhaul-${host}.pid"
    disown "${pid}"
    wait_until_alive "${pid}" 30 test -S "${dir}/longhaul.sock"
}

# Writes a host's nginx.conf: the repository's TLS and location snippets, the backend's socket as the upstream,
# listening on the host's address (and 127.0.0.1) port 443. Workers run as root: test only.
cl_render_nginx() {
    local host="$1" dir="${CL_DIR}/${1}/nginx" conf_dir snippet
    mkdir -p "${dir}/snippets" "${dir}/tmp"
    conf_dir="$(nginx_conf_dir)"
    cp "${conf_dir}/fastcgi_params" "${conf_dir}/mime.types" "${dir}/"
    for snippet in "${CL_ROOT}"/nginx/snippets/*.conf; do
        render_template "${snippet}" "${dir}/snippets/${snippet##*/}" "STATIC_ROOT=${CL_ROOT}/static" \
            "SOCKET=${CL_DIR}/${host}/longhaul.sock" || return 1
    done
    cat >"${dir}/nginx.conf" <<EOF
# Rendered by Tests/Cluster/lib.sh for host ${host}. Test only: workers run as root.
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
    include mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/client_body;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    proxy_temp_path ${dir}/tmp/proxy;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    server_tokens off;
    limit_req_zone \$binary_remote_addr zone=longhaul_generate:1m rate=10r/s;
    upstream longhaul_backend {
        server unix:${CL_DIR}/${host}/longhaul.sock;
    }
    server {
        listen $(cl_ip "${host}"):443 ssl;
        listen 127.0.0.1:443 ssl;
        server_name _;
        ssl_certificate ${CL_DIR}/tls/cert.pem;
        ssl_certificate_key ${CL_DIR}/tls/key.pem;
        include snippets/longhaul-tls.conf;
        include snippets/longhaul-security-headers.conf;
        include snippets/longhaul-locations.conf;
    }
}
EOF
}

# Starts nginx on a backend host and waits until it serves a static file over verified TLS to the client host.
cl_start_nginx() {
    local host="$1" dir="${CL_DIR}/${1}/nginx"
    cl_render_nginx "${host}" || return 1
    cl_exec "${host}" nginx -t -q -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" \
        >>"${CL_DIR}/logs/nginx-${host}.log" 2>&1 || return 1
    cl_spawn "nginx-${host}" "${host}" nginx -p "${dir}/" -c "${dir}/nginx.conf" -e "${dir}/error.log" \
        -g 'daemon off;'
    wait_until 20 cl_exec client curl -fsS -o /dev/null --max-time 3 --cacert "${CL_DIR}/tls/ca.pem" \
        "https://$(cl_ip "${host}")/static/app.css"
}

# --- The load ---------------------------------------------------------------------------------------------------------

# Runs cluster.py inside the client host. $@: its arguments.
cl_client() {
    cl_exec client python3 "${CL_ROOT}/Tests/Cluster/cluster.py" "$@"
}

# Follows one task's event stream like a browser's EventSource: curl -N through a front end, and on a dropped or
# stalled connection (no byte for 20 s: the backend sends a keep-alive every 15 s) again through the next front end
# with Last-Event-ID, until the stream has ended (done, or an error event). As in a browser, an event counts (its
# text, its id for the resume) only once the blank line that ends it has arrived: a connection cut inside an event
# loses that event, and the resume sends it again. Each connection starts with a comment line that the analyser
# counts and that drops such a cut event. At most 6 connections and 90 s. $1: task id. $2: output file. $@ (rest): front
# end addresses, tried in turn.
cl_stream() {
    local id="$1" out="$2" n=0 last="" deadline=$((SECONDS + 90)) front
    shift 2
    local fronts=("$@")
    : >"${out}"
    while ((n < 6 && SECONDS < deadline)); do
        front="${fronts[$((n % ${#fronts[@]}))]}"
        # A connection cut mid-line leaves a partial line: end it, so that the marker is a line of its own.
        if [[ -s "${out}" && -n "$(tail -c 1 "${out}")" ]]; then printf '\n' >>"${out}"; fi
        printf ': cluster-suite connection %d via %s\n' "$((n + 1))" "${front}" >>"${out}"
        local resume=()
        [[ -z "${last}" ]] || resume=(-H "Last-Event-ID: ${last}")
        cl_exec client curl -sS -N --max-time 60 --speed-limit 1 --speed-time 20 --cacert "${CL_DIR}/tls/ca.pem" \
            "${resume[@]}" "https://${front}/api/tasks/${id}/events" >>"${out}" 2>>"${CL_DIR}/logs/streams.err" || true
        last="$(python3 "${CL_ROOT}/Tests/Cluster/cluster.py" last-event-id "${out}")" || last=""
        if [[ "$(python3 "${CL_ROOT}/Tests/Cluster/cluster.py" stream-ended "${out}")" == yes ]]; then
            return 0
        fi
        n=$((n + 1))
        sleep 1
    done
    return 1
}
