#!/usr/bin/env bash
#
# Tests/Cluster/run.sh: the cluster suite of issue 14, "scale-out that holds under pauses, partitions, clock skew
# and Redis failover". It builds a small cluster of hosts in network namespaces that it creates itself (see
# Tests/Cluster/lib.sh), puts a steady load of tasks on it with streaming clients, injects faults one at a time and
# then mixed, and checks after each: every accepted task ends succeeded with the mock's text (or, only where the
# configuration allows a loss, ends with 404 or a failure with a reason), no two upstream calls of one task overlap
# in time, the cluster-wide in-flight limit held, no task was cancelled, every stream ended with the final text,
# and each backend's CPU and RSS came back to its baseline. Then a quiet period (two real minutes, no traffic).
#
# Prints `PASS name` / `FAIL name: reason` lines, a results table (Markdown) and ends with `N passed, N failed`.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: Tests/Cluster/run.sh [-b BINARY] [-s SCENARIOS] [-q SECONDS] [-k] [-h]

  -b BINARY    the longhaul binary (default: $LONGHAUL_BIN, else .build/debug/longhaul); it is copied into the
               run directory first, so a rebuild during the run changes nothing
  -s LIST      comma-separated scenarios (default: all, in this order):
               steady,sigstop,partition,kill9,redis-aof,redis-nopersist,failover,skew,mixed,quiet
  -q SECONDS   length of the quiet period (default 120: the issue asks for two real minutes)
  -k           keep the run directory (logs, the mock's call log, stream captures) and print where it is
  -h           this help

Needs root (ip netns), iproute2, iptables, redis-server (with Sentinel), nginx, curl, openssl, python3 and
libfaketime (scripts/test installs them). Traffic stays inside the namespaces the suite creates (10.231.7.0/24);
every namespace and process it started is removed on exit, failed or not. The store is Sentinel
(redis+sentinel://...) when the binary's --help offers it; otherwise a direct redis:// URL to the first master,
reported as a failure. Set CLUSTER_STORE to force a store URL. Exits non-zero when a check failed.
EOF
}

HERE="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=Tests/Cluster/lib.sh
source "${HERE}/lib.sh"
CL_ROOT="${LONGHAUL_ROOT}"

bin="${LONGHAUL_BIN:-${LONGHAUL_ROOT}/.build/debug/longhaul}"
scenarios="steady,sigstop,partition,kill9,redis-aof,redis-nopersist,failover,skew,mixed,quiet"
quiet_seconds=120
keep=0
while getopts ":b:s:q:kh" opt; do
    case "${opt}" in
        b) bin="${OPTARG}" ;;
        s) scenarios="${OPTARG}" ;;
        q) quiet_seconds="${OPTARG}" ;;
        k) keep=1 ;;
        h)
            usage
            exit 0
            ;;
        *)
            usage >&2
            exit 64
            ;;
    esac
done
shift $((OPTIND - 1))
[[ $# -eq 0 ]] || fatal "unexpected argument: $1"
[[ "${quiet_seconds}" =~ ^[0-9]+$ ]] || fatal "-q needs a number of seconds"
[[ ${EUID} -eq 0 ]] || fatal "the cluster suite needs root (network namespaces)"
[[ -x "${bin}" ]] || fatal "no such binary: ${bin}"
for tool in ip redis-server redis-cli nginx curl openssl python3 timeout; do
    command -v "${tool}" >/dev/null 2>&1 || fatal "${tool} is missing (scripts/test installs what the suite needs)"
done

CL_DIR="$(mktemp -d "${TMPDIR:-/tmp}/longhaul-cluster.XXXXXX")"
CL_DIR="$(cd "${CL_DIR}" && pwd -P)"
chmod 0755 "${CL_DIR}"
mkdir -p "${CL_DIR}/logs" "${CL_DIR}/pids"
CL_PREFIX="lhc$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
cp "${bin}" "${CL_DIR}/longhaul"
CL_BIN="${CL_DIR}/longhaul"
started_at="${SECONDS}"

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    cl_teardown
    if [[ ${CL_FAILED} -gt 0 || ${rc} -ne 0 ]]; then
        local file
        for file in "${CL_DIR}"/logs/longhaul-b*.log; do
            [[ -s "${file}" ]] || continue
            printf -- '---- last lines of %s ----\n' "${file##*/}" >&2
            tail -n 8 "${file}" >&2
        done
    fi
    if [[ ${keep} -eq 1 ]]; then
        log "kept ${CL_DIR}"
    else
        rm -rf "${CL_DIR}"
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints the summary and exits.
finish() {
    printf '\n== results\n'
    python3 "${HERE}/cluster.py" table --rows "${CL_DIR}/rows.jsonl" | tee "${CL_DIR}/results.md"
    printf '\nstore: %s (%s); backend flags: --lease-timeout %s --max-in-flight %s --max-attempts 5%s\n' \
        "${CL_STORE}" "${CL_STORE_KIND}" "${CL_LEASE}" "${CL_LIMIT}" \
        "$([[ ${CL_WAIT_REPLICAS} -eq 0 ]] || printf ' --redis-wait-replicas 1')"
    printf 'wall time: %d s\n' "$((SECONDS - started_at))"
    if [[ ${CL_FAILED} -gt 0 ]]; then
        printf 'Failed checks:\n'
        printf '  %s\n' "${CL_FAILURES[@]}"
    fi
    printf '%d passed, %d failed\n' "${CL_PASSED}" "${CL_FAILED}"
    [[ ${CL_FAILED} -eq 0 ]]
    exit $?
}

# Succeeds when a scenario was asked for. $1: its name.
wanted() {
    [[ ",${scenarios}," == *",$1,"* ]]
}

now() {
    date +%s.%N
}

# --- The cluster ------------------------------------------------------------------------------------------------------

log "cluster run in ${CL_DIR} (namespaces ${CL_PREFIX}-*, binary ${bin})"
if python3 -m unittest discover -s "${HERE}" -p 'test_*.py' >"${CL_DIR}/logs/selftest.log" 2>&1; then
    cl_pass "setup: the analysers' self-test (each check can fail on made-up data)"
else
    cl_fail "setup: the analysers' self-test" "$(tail -n 5 "${CL_DIR}/logs/selftest.log")"
fi
cl_choose_store
if cl_network_up 2>>"${CL_DIR}/logs/setup.err"; then
    cl_pass "setup: ${#CL_HOSTS[@]} host namespaces and a switch namespace with a bridge"
else
    cl_fail "setup: host namespaces and a bridge" "$(tail -n 3 "${CL_DIR}/logs/setup.err")"
    finish
fi
if cl_find_iptables; then
    cl_pass "setup: ${CL_IPTABLES} works inside a namespace"
else
    cl_fail "setup: iptables works inside a namespace" "neither iptables, iptables-nft nor iptables-legacy"
fi
cl_check "setup: certificates for the three front ends" "see logs/openssl.log" cl_make_certs

ok=1
cl_start_redis redis-a persist || ok=0
cl_start_redis redis-b persist "$(cl_ip redis-a)" || ok=0
if [[ ${ok} -eq 1 ]] && wait_until 20 cl_replica_synced redis-b; then
    cl_pass "setup: redis-server master on redis-a, replica on redis-b in sync (appendonly yes, fsync always)"
else
    cl_fail "setup: redis master and replica" "$(tail -n 3 "${CL_DIR}"/redis-*/redis.log 2>/dev/null)"
fi
ok=1
for host in redis-a redis-b llm; do cl_start_sentinel "${host}" || ok=0; done
if [[ ${ok} -eq 1 ]] && wait_until 20 cl_sentinels_agree "$(cl_ip redis-a)"; then
    cl_pass "setup: three sentinels (redis-a, redis-b, llm) agree on the master"
else
    cl_fail "setup: three sentinels agree on the master" "see */sentinel/sentinel.log"
fi
if cl_start_mock; then
    cl_pass "setup: the mock LLM listens on llm:${CL_MOCK_PORT} with --call-log"
else
    cl_fail "setup: the mock LLM listens" "$(tail -n 3 "${CL_DIR}/logs/mock.log")"
    finish
fi
if [[ "${CL_STORE_KIND}" == direct ]]; then
    cl_fail "setup: the backend offers --store redis+sentinel://" \
        "not in this binary's --help: falling back to ${CL_STORE}, which cannot follow a failover"
else
    cl_pass "setup: the backends use ${CL_STORE}"
fi
if [[ ${CL_WAIT_REPLICAS} -eq 1 ]]; then
    cl_pass "setup: the backends wait for one replica (--redis-wait-replicas 1)"
else
    cl_fail "setup: the backend offers --redis-wait-replicas" \
        "not in this binary's --help: an accepted task may be lost by a failover"
fi
for host in "${CL_BACKENDS[@]}"; do
    if cl_start_backend "${host}"; then
        cl_pass "setup: longhaul on ${host} ($(cl_ip "${host}")) with --socket"
    else
        cl_fail "setup: longhaul on ${host}" "$(tail -n 3 "${CL_DIR}/logs/longhaul-${host}.log")"
        finish
    fi
    if cl_start_nginx "${host}"; then
        cl_pass "setup: nginx over TLS on ${host}:443 in front of it"
    else
        cl_fail "setup: nginx on ${host}" "$(tail -n 3 "${CL_DIR}/${host}/nginx/error.log" 2>/dev/null)"
        finish
    fi
done
# Succeeds when the client reaches every front end and the backends reach Redis, a sentinel and the mock.
# shellcheck disable=SC2317 # called through cl_check
reach_all() {
    cl_reaches client b1 443 && cl_reaches client b2 443 && cl_reaches client b3 443 &&
        cl_reaches b1 redis-a 6379 && cl_reaches b2 redis-b 6379 && cl_reaches b3 llm 26379 &&
        cl_reaches b2 llm "${CL_MOCK_PORT}"
}
cl_check "setup: the client reaches every front end, the backends reach Redis and the mock" "a host is unreachable" \
    reach_all

# --- Scenario helpers -------------------------------------------------------------------------------------------------

SC=""
SC_T0=0
SC_TASKS=""
SC_STREAMS=""
SC_STREAM_PIDS=()
SC_SUBMIT_PID=""
SC_NOTES=()

# Starts a scenario: zeroes the mock's counters (its peak), notes the time. $1: name.
sc_begin() {
    SC="$1"
    printf '\n== %s (at %d s)\n' "${SC}" "$((SECONDS - started_at))"
    SC_TASKS="${CL_DIR}/sc-${SC}.tasks"
    : >"${SC_TASKS}"
    SC_STREAMS=""
    SC_STREAM_PIDS=()
    SC_SUBMIT_PID=""
    SC_NOTES=()
    cl_mock_get reset POST >/dev/null 2>&1 || true
    SC_T0="$(now)"
}

# Submits tasks through the three front ends in turn, 0.25 s apart. $1: how many. $2: first task number.
# $3: the mock latency of each task (seconds). $@ (rest): more `cluster.py submit` flags (--may-lose).
sc_submit() {
    cl_client submit --fronts "$(cl_fronts "${CL_BACKENDS[@]}")" --cacert "${CL_DIR}/tls/ca.pem" --scenario "${SC}" --count "$1" \
        --first "$2" --latency "$3" --timeout 4 "${@:4}" --out "${SC_TASKS}" 2>>"${CL_DIR}/logs/client.err" || true
}

# sc_submit in the background.
sc_submit_bg() {
    sc_submit "$@" &
    SC_SUBMIT_PID=$!
    cl_track "${SC_SUBMIT_PID}"
}

# Opens a stream (cl_stream, reconnecting) on task number K. $1: K. $@ (rest): the hosts whose front ends it uses.
sc_stream() {
    local k="$1" id out host fronts=()
    shift
    id="$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["k"] == int(sys.argv[2]) and t.get("id"):
        print(t["id"])' "${SC_TASKS}" "${k}")"
    if [[ -z "${id}" ]]; then
        SC_NOTES+=("task ${k} not accepted: no stream")
        return 0
    fi
    for host in "$@"; do fronts+=("$(cl_ip "${host}")"); done
    out="${CL_DIR}/sc-${SC}.stream-${k}"
    cl_stream "${id}" "${out}" "${fronts[@]}" &
    SC_STREAM_PIDS+=("$!")
    cl_track "$!"
    SC_STREAMS+="${id}=${out},"
}

# The usual start of a scenario's load: tasks 1 and 2 with a stream each (through the given hosts' front ends,
# in turn), then COUNT-2 more in the background. $1: COUNT. $2: latency. $3, $4: stream hosts. $@ (rest): submit flags.
sc_load() {
    local count="$1" latency="$2" s1="$3" s2="$4"
    shift 4
    sc_submit 2 1 "${latency}" "$@"
    sc_stream 1 "${s1}" "${s2}"
    sc_stream 2 "${s2}" "${s1}"
    sc_submit_bg "$((count - 2))" 3 "${latency}" "$@"
}

# The start of a scenario with one victim backend: the load (COUNT tasks), then the victim is picked as the first
# backend that has an upstream call in flight (the preferred one when it has; any process may claim any task, so
# the front end a task came through says nothing), then tasks 1 and 2 get a stream each through the two other
# front ends. Sets VICTIM. $1: COUNT. $2: latency. $3: the preferred victim.
VICTIM=""
sc_load_victim() {
    local count="$1" latency="$2" preferred="$3" others=() host
    sc_submit 2 1 "${latency}"
    sc_submit_bg "$((count - 2))" 3 "${latency}"
    VICTIM="$(pick_busy "${preferred}")"
    for host in "${CL_BACKENDS[@]}"; do [[ "${host}" == "${VICTIM}" ]] || others+=("${host}"); done
    sc_stream 1 "${others[0]}" "${others[1]}"
    sc_stream 2 "${others[1]}" "${others[0]}"
}

# Samples the backends' CPU time and RSS. $1: output file. $@ (rest, optional): only these hosts.
sc_sample() {
    local out="$1" host pairs=()
    shift
    local hosts=("$@")
    [[ ${#hosts[@]} -gt 0 ]] || hosts=("${CL_BACKENDS[@]}")
    for host in "${hosts[@]}"; do pairs+=("${host}=$(cl_pid "longhaul-${host}")"); done
    python3 "${HERE}/cluster.py" sample "${pairs[@]}" >"${out}"
}

# Records the baseline of some backends (after a start): merged into CL_DIR/baseline.json. $@: hosts.
sc_baseline() {
    sc_sample "${CL_DIR}/baseline.new" "$@"
    python3 - "${CL_DIR}/baseline.json" "${CL_DIR}/baseline.new" <<'PY'
import json, os, sys
base = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {}
base.update(json.load(open(sys.argv[2])))
json.dump(base, open(sys.argv[1], "w"))
PY
}

# Waits for the load (the submitter, every task, every stream), then runs the checks and the idle check.
# $1: seconds the tasks get to finish.
sc_finish() {
    local deadline="$1" pid
    if [[ -n "${SC_SUBMIT_PID}" ]]; then
        wait "${SC_SUBMIT_PID}" 2>/dev/null || true
    fi
    cl_client wait --fronts "$(cl_fronts "${CL_BACKENDS[@]}")" --cacert "${CL_DIR}/tls/ca.pem" --tasks "${SC_TASKS}" \
        --deadline "${deadline}" --out "${CL_DIR}/sc-${SC}.results" 2>>"${CL_DIR}/logs/client.err" || true
    # A stream follows its task to the end by itself (bounded in cl_stream); 20 s more at most after the tasks.
    for pid in "${SC_STREAM_PIDS[@]}"; do
        if ! wait_until 20 process_gone "${pid}"; then
            kill "${pid}" 2>/dev/null || true
        fi
        wait "${pid}" 2>/dev/null || true
    done
    local until mock_peak note notes=()
    until="$(now)"
    mock_peak="$(cl_mock_stat max_concurrent_streams)"
    for note in "${SC_NOTES[@]}"; do notes+=("--note=${note}"); done
    cl_analyse check --scenario "${SC}" --tasks "${SC_TASKS}" --results "${CL_DIR}/sc-${SC}.results" \
        --calls "${CL_DIR}/calls.jsonl" --since "${SC_T0}" --until "${until}" --limit "${CL_LIMIT}" \
        --mock-peak "${mock_peak}" --streams="${SC_STREAMS%,}" --hosts "$(cl_host_map)" \
        --rows "${CL_DIR}/rows.jsonl" "${notes[@]}"
    sc_idle_check
}

# CPU and RSS back to the baseline: after 1 s, a 2 s idle window in which each backend may use 0.3 s of CPU, and
# RSS within 40 MB of its baseline (taken after the first scenario, or after the process's start).
sc_idle_check() {
    sleep 1
    sc_sample "${CL_DIR}/sc-${SC}.idle0"
    sleep 2
    sc_sample "${CL_DIR}/sc-${SC}.idle1"
    cl_analyse idle --scenario "${SC}" --before "${CL_DIR}/sc-${SC}.idle0" --after "${CL_DIR}/sc-${SC}.idle1" \
        --baseline "${CL_DIR}/baseline.json" --window 2 --max-cpu 0.3 --max-rss-growth-mb 40
}

# Succeeds when the mock streams at least one reply to a host now (/mock/stats streams_active_by_peer). $1: host.
# shellcheck disable=SC2317 # called through wait_until
host_has_call() {
    cl_mock_get stats 2>/dev/null | python3 -c 'import json,sys
sys.exit(0 if json.load(sys.stdin).get("streams_active_by_peer", {}).get(sys.argv[1], 0) > 0 else 1)' "$(cl_ip "$1")"
}

# Prints the backend to hit: the preferred one as soon as it has an upstream call in flight, or after 1 s another
# one that has, polled for 4 s at most (/mock/stats streams_active_by_peer); the preferred one when none had any.
# $1: the preferred backend.
pick_busy() {
    local preferred="$1" tries=20 host
    while ((tries-- > 0)); do
        host_has_call "${preferred}" && break
        ((tries < 15)) || {
            sleep 0.2
            continue
        }
        for host in "${CL_BACKENDS[@]}"; do
            if host_has_call "${host}"; then
                printf '%s' "${host}"
                return 0
            fi
        done
        sleep 0.2
    done
    printf '%s' "${preferred}"
}

# Prints how many upstream calls from a host were in flight at a time (from the mock's call log). $1: host.
# $2: time.
calls_in_flight_at() {
    python3 "${HERE}/cluster.py" inflight --calls "${CL_DIR}/calls.jsonl" --peer "$(cl_ip "$1")" --at "$2"
}

# With the direct-URL fallback only: gives the master role back to redis-a (the backends cannot follow a failover),
# so that the scenarios after a failover still test something.
handback_master() {
    [[ "${CL_STORE_KIND}" == direct ]] || return 0
    [[ "$(cl_master_host)" != redis-a ]] || return 0
    wait_until 20 cl_replica_synced redis-a || true
    cl_exec llm redis-cli -p 26379 SENTINEL failover "${CL_MASTER_NAME}" >/dev/null 2>&1 || true
    if wait_until 30 cl_sentinels_agree "$(cl_ip redis-a)" && wait_until 10 cl_redis_role_is redis-a master; then
        log "fallback store: the master role was handed back to redis-a"
    else
        warn "fallback store: the master role could not be handed back to redis-a"
    fi
}

# Succeeds when the sentinels name a master other than the given address. $1: the old master's IP.
# shellcheck disable=SC2317 # called through wait_until
master_moved_from() {
    local ip
    ip="$(cl_master_ip)"
    [[ -n "${ip}" && "${ip}" != "$1" ]]
}

# kill -9 the current master, wait until the sentinels have promoted the replica, start the old master again (it
# comes back with its AOF and Sentinel turns it into a replica). Adds notes. Prints nothing.
failover_master() {
    local old old_ip t_kill new_ip
    old="$(cl_master_host)"
    [[ -n "${old}" ]] || old="redis-a"
    old_ip="$(cl_ip "${old}")"
    t_kill="${SECONDS}"
    cl_kill "redis-${old}" KILL
    if wait_until 30 master_moved_from "${old_ip}"; then
        new_ip="$(cl_master_ip)"
        SC_NOTES+=("master ${old} killed, Sentinel promoted ${new_ip##*.} in $((SECONDS - t_kill)) s")
    else
        SC_NOTES+=("master ${old} killed, no failover within 30 s")
        cl_fail "cluster ${SC}: Sentinel promotes the replica within 30 s" "the master is still ${old_ip}"
    fi
    cl_start_redis "${old}" persist || SC_NOTES+=("${old} did not restart")
    if ! wait_until 20 cl_redis_role_is "${old}" slave; then
        SC_NOTES+=("${old} not yet a replica 20 s after its restart")
    fi
}

# --- Scenarios --------------------------------------------------------------------------------------------------------
# Unless said otherwise, the mock answers each task in 1.5 s (shorter than the 3 s lease: a frozen process cannot
# abort its own upstream call, the provider keeps streaming into its socket; the guarantee is that a takeover starts
# only after the lease expired, so with calls shorter than the lease, an overlap means a takeover came too early).

if wanted steady; then
    sc_begin steady
    sc_load 8 1.5 b2 b3
    sc_finish 25
    sc_baseline b1 b2 b3
fi
[[ -s "${CL_DIR}/baseline.json" ]] || sc_baseline b1 b2 b3

if wanted sigstop; then
    # SIGSTOP a backend with a call in flight (b2 when it has one) for 4.5 s (longer than the 3 s lease), then
    # SIGCONT: its running tasks are taken over after the lease, and its writes after it wakes up must be refused.
    sc_begin sigstop
    sc_load_victim 8 1.5 b2
    t_stop="$(now)"
    kill -STOP "$(cl_pid "longhaul-${VICTIM}")"
    sleep 4.5
    kill -CONT "$(cl_pid "longhaul-${VICTIM}")"
    SC_NOTES+=("${VICTIM} stopped 4.5 s with $(calls_in_flight_at "${VICTIM}" "${t_stop}") call(s) in flight")
    sc_finish 30
fi

if wanted partition; then
    # Drop every packet between a backend with a call in flight (b1 when it has one) and Redis (and the sentinels)
    # for 6 s, then heal. These tasks take 4 s at the mock, longer than the lease: the backend must abort its runs
    # before its lease ends (it cannot renew), or its call overlaps the takeover's.
    sc_begin partition
    sc_load_victim 8 4 b1
    t_cut="$(now)"
    cl_partition "${VICTIM}" || cl_fail "cluster partition: iptables rules in ${VICTIM}" "${CL_IPTABLES} failed"
    sleep 6
    cl_heal "${VICTIM}"
    SC_NOTES+=("${VICTIM} cut from Redis 6 s with $(calls_in_flight_at "${VICTIM}" "${t_cut}") call(s) in flight; 4 s calls")
    sc_finish 40
fi

if wanted kill9; then
    # kill -9 a backend with a call in flight (b3 when it has one); it is started again 2 s later (as a supervisor
    # would). The calls take 3 s here (a dead process's calls end with it: no overlap to fear).
    sc_begin kill9
    sc_load_victim 8 3 b3
    t_kill="$(now)"
    cl_kill "longhaul-${VICTIM}" KILL
    sleep 2
    cl_start_backend "${VICTIM}" "$(cat "${CL_DIR}/${VICTIM}/skew")" ||
        cl_fail "cluster kill9: ${VICTIM} starts again" "see its log"
    SC_NOTES+=("${VICTIM} killed with $(calls_in_flight_at "${VICTIM}" "${t_kill}") call(s) in flight, restarted 2 s later")
    sc_finish 30
    sc_baseline "${VICTIM}"
fi

if wanted redis-aof; then
    # kill -9 the master and start it again at once (well inside Sentinel's 2 s down-after: no failover) with its
    # append-only file (appendfsync always): nothing accepted may be lost.
    sc_begin redis-aof
    sc_load 8 1.5 b1 b2
    sleep 1.5
    master="$(cl_master_host)"
    cl_kill "redis-${master:-redis-a}" KILL
    cl_start_redis "${master:-redis-a}" persist || cl_fail "cluster redis-aof: Redis restarts" "see its log"
    SC_NOTES+=("${master:-redis-a} restarted with appendonly yes")
    sc_finish 30
    [[ "$(cl_master_host)" == "${master}" ]] ||
        warn "redis-aof: Sentinel failed over although the master came back at once (a slow restart?)"
fi

if wanted redis-nopersist; then
    # The same restart without persistence (its files gone): the master comes back empty and the replica resyncs
    # from it, so tasks accepted before it are lost by design. The backends must say so (404, or failed with a
    # reason), never hang, spin or answer 500. Tasks 9-11, submitted after the restart, must all succeed.
    sc_begin redis-nopersist
    sc_load 8 1.5 b1 b2 --may-lose
    wait "${SC_SUBMIT_PID}" 2>/dev/null || true
    SC_SUBMIT_PID=""
    master="$(cl_master_host)"
    cl_kill "redis-${master:-redis-a}" KILL
    cl_start_redis "${master:-redis-a}" nopersist || cl_fail "cluster redis-nopersist: Redis restarts" "see its log"
    cl_exec "${master:-redis-a}" redis-cli -p 6379 config set appendonly yes >/dev/null 2>&1 || true
    cl_exec "${master:-redis-a}" redis-cli -p 6379 config set appendfsync always >/dev/null 2>&1 || true
    SC_NOTES+=("${master:-redis-a} restarted empty (no AOF, no RDB); tasks 1-8 may be lost, 9-11 may not")
    sleep 1
    sc_submit 3 9 1.5
    sc_finish 30
fi

if wanted failover; then
    # kill -9 the master: Sentinel promotes the replica (about 3-4 s); the old master comes back as a replica.
    # With --redis-wait-replicas 1 an accepted task is on the replica before the 202: nothing may be lost.
    sc_begin failover
    sc_load 8 1.5 b1 b2
    sleep 1.5
    failover_master
    sc_finish 35
    handback_master
fi

if wanted skew; then
    # b1 runs with its clock 60 s ahead, b3 60 s behind (libfaketime). Leases and expiries must not depend on the
    # processes' clocks. They stay skewed for the rest of the run.
    printf '\n== skew: restarting b1 (+60 s) and b3 (-60 s) under faketime\n'
    cl_kill longhaul-b1 TERM
    cl_start_backend b1 +60 || cl_fail "cluster skew: b1 starts under faketime" "see its log"
    cl_kill longhaul-b3 TERM
    cl_start_backend b3 -60 || cl_fail "cluster skew: b3 starts under faketime" "see its log"
    skew_seen="$(cl_exec b1 env LD_PRELOAD="$(cl_libfaketime)" FAKETIME=+60 date +%s) $(date +%s) $(cl_exec b3 \
        env LD_PRELOAD="$(cl_libfaketime)" FAKETIME=-60 date +%s)"
    read -r skew_ahead skew_now skew_behind <<<"${skew_seen}"
    cl_check "cluster skew: libfaketime moves the wall clock 60 s ahead and behind in b1 and b3" \
        "date under the same settings gave ${skew_seen}" \
        test "$((skew_ahead - skew_now))" -ge 58 -a "$((skew_now - skew_behind))" -ge 58
    sc_baseline b1 b3
    sc_begin skew
    sc_load 9 1.5 b1 b3
    SC_NOTES+=("b1 +60 s, b3 -60 s")
    sc_finish 25
    cl_analyse skew --results "${CL_DIR}/sc-skew.results" --tasks "${SC_TASKS}" --hosts "$(cl_host_map)"
fi

if wanted mixed; then
    # Everything at once on one load (b1 and b3 still skewed when skew ran): SIGSTOP b2 at 1 s (for 4.5 s),
    # cut b1 from Redis at 2 s (for 5 s), kill -9 the master at 3 s (failover), kill -9 b3 at 4 s (restarted at 6 s).
    sc_begin mixed
    sc_load 10 1.5 b1 b3
    sleep 1
    kill -STOP "$(cl_pid longhaul-b2)"
    sleep 1
    cl_partition b1 || true
    sleep 1
    mixed_old_master="$(cl_master_host)"
    cl_kill "redis-${mixed_old_master:-redis-a}" KILL
    sleep 1
    cl_kill longhaul-b3 KILL
    sleep 1.5
    kill -CONT "$(cl_pid longhaul-b2)"
    sleep 0.5
    cl_start_backend b3 "$(cat "${CL_DIR}/b3/skew")" || cl_fail "cluster mixed: b3 starts again" "see its log"
    sleep 1
    cl_heal b1
    wait_until 30 master_moved_from "$(cl_ip "${mixed_old_master:-redis-a}")" || SC_NOTES+=("no failover within 30 s")
    cl_start_redis "${mixed_old_master:-redis-a}" persist || true
    wait_until 20 cl_redis_role_is "${mixed_old_master:-redis-a}" slave || true
    SC_NOTES+=("b2 stopped 4.5 s, b1 cut 5 s, master ${mixed_old_master:-redis-a} killed, b3 killed")
    sc_finish 45
    sc_baseline b3
    handback_master
fi

if wanted quiet; then
    # A quiet period longer than every read timeout in the store: no traffic at all, then each backend must have
    # used almost no CPU (< 1 s over the whole period) and its RSS must not have grown by more than 4 MB; a new
    # task through each front end works afterwards.
    printf '\n== quiet: %d s without traffic\n' "${quiet_seconds}"
    sc_sample "${CL_DIR}/quiet.0"
    sleep "${quiet_seconds}"
    sc_sample "${CL_DIR}/quiet.1"
    cl_analyse idle --scenario quiet --before "${CL_DIR}/quiet.0" --after "${CL_DIR}/quiet.1" \
        --window "${quiet_seconds}" --max-cpu 1.0 --max-rss-growth-mb 4
    sc_begin after-quiet
    sc_submit 3 1 1.5
    SC_NOTES+=("after ${quiet_seconds} s without traffic: ${CL_LAST_NOTE:-}")
    sc_finish 25
fi

finish
