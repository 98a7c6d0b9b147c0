#!/usr/bin/env python3
"""bench/loadgen.py: the load generators of scripts/bench (Python standard library only).

Every mode talks HTTP/1.1 to nginx on loopback (plain HTTP, keep-alive, raw asyncio sockets), is bounded in
time (--deadline), prints one JSON object on stdout, and exits 0 when the measurement itself worked (a missed
performance target is still exit 0), 1 when it did not (wrong replies, unexpected statuses, time-outs).

Modes
    probe      GET PATH on one keep-alive connection every --interval seconds until SIGTERM/SIGINT or
               --duration; latency samples (wall time, seconds) to stdout as JSON. Run as a separate process by
               the other modes, so that their own event loop never delays its measurements.
    tasks      Part 2: N concurrent tasks (POST /api/tasks), then verify every result (GET /api/tasks/ID);
               /check latency by a probe meanwhile; backend RSS sampled throughout.
    streams    Part 3: N tasks, one server-sent event stream each (GET /api/tasks/ID/events); the delay from
               the mock writing each delta (its --delta-log) to this client receiving it.
    streams-direct
               Part 3's floor: the same N streams read straight from the mock (--port is the mock's), with no
               nginx and no backend between: the delay the mock and this client alone give on this machine.
    soak       Part 5: N tasks created, completed and checked by W workers (at most W outstanding).
    coldstart  Part 6: start a command, poll GET PATH through nginx until 200; time from the start.
    pending    Create one task (POST /api/tasks) and print its id.
    memory     RSS, peak RSS, CPU seconds and open descriptors (total, and curl's connections to the mock at
               --upstream-port) of --pid, as JSON; --port is ignored.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

# ------------------------------------------------------------------------------------------------------------
# Statistics


def pct(values, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summary_ms(values):
    """p50/p90/p99/max/count of latencies given in seconds, in milliseconds."""
    if not values:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "p50_ms": round(pct(values, 50) * 1000, 3),
        "p90_ms": round(pct(values, 90) * 1000, 3),
        "p99_ms": round(pct(values, 99) * 1000, 3),
        "max_ms": round(max(values) * 1000, 3),
    }


def parse_rfc3339(text):
    """2025-01-02T03:04:05.678Z -> POSIX seconds (float)."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$", text or "")
    if not m:
        return None
    import calendar
    secs = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    return secs + (float(m.group(7)) if m.group(7) else 0.0)


# ------------------------------------------------------------------------------------------------------------
# Process memory


def proc_status(pid):
    """VmRSS and VmHWM in KiB, and the number of open descriptors, of a process (None when gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError):
        return None
    return out


def http_get_text(port, path, host="127.0.0.1", timeout=10):
    """The body of a plain HTTP/1.0 GET (a status page: small, answered at once)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200":
        raise RuntimeError("GET %s: %s" % (path, head.split(b"\r\n", 1)[0].decode(errors="replace")))
    return body.decode()


def proc_cpu_seconds(pid):
    """User + system CPU seconds a process (all its threads) has used, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def busy_pct(start, end):
    db, dt = end[0] - start[0], end[1] - start[1]
    return round(100.0 * db / dt, 1) if dt > 0 else None


def proc_fds(pid, upstream_port):
    """Open descriptors of a process: total, and TCP connections to 127.0.0.1:upstream_port (kept by curl)."""
    inodes = []
    total = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        total += 1
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.append(target[8:-1])
    upstream = 0
    wanted = set(inodes)
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in wanted and int(cols[2].rsplit(":", 1)[1], 16) == upstream_port:
                        upstream += 1
        except OSError:
            pass
    return {"total": total, "upstream": upstream, "other": total - upstream}


class RssSampler:
    """Samples a process's RSS every `interval` seconds on the event loop."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.samples = []  # (time, rss_kib)
        self.task = None

    def start(self):
        if self.pid:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        while True:
            st = proc_status(self.pid)
            if st:
                self.samples.append((time.time(), st["VmRSS"]))
            await asyncio.sleep(self.interval)

    def stop(self):
        if self.task:
            self.task.cancel()

    def peak_kib(self):
        return max((r for _, r in self.samples), default=None)


# ------------------------------------------------------------------------------------------------------------
# A small HTTP/1.1 client


class HttpError(Exception):
    pass


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body


class _Proto(asyncio.Protocol):
    """One connection; one request at a time. Parses Content-Length, chunked and close-delimited bodies."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def data_received(self, data):
        self.buf += data
        self._check()

    def eof_received(self):
        self.closed = True
        self._check()
        return False

    def connection_lost(self, exc):
        self.closed = True
        self._check()

    def _check(self):
        w = self.waiter
        if w is None or w.done():
            return
        try:
            r = self._parse()
        except HttpError as e:
            w.set_exception(e)
            return
        if r is not None:
            w.set_result(r)
        elif self.closed:
            w.set_exception(HttpError("connection closed before a complete response"))

    def _parse(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError("bad status line: %r" % head[0][:80])
        status = int(parts[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        start = end + 4
        if "content-length" in headers:
            n = int(headers["content-length"])
            if len(buf) - start < n:
                return None
            body = bytes(buf[start:start + n])
            del buf[:start + n]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            pos = start
            chunks = []
            while True:
                le = buf.find(b"\r\n", pos)
                if le < 0:
                    return None
                size = int(bytes(buf[pos:le]).split(b";")[0], 16)
                if size == 0:
                    te = buf.find(b"\r\n\r\n", le)
                    if te < 0:
                        if buf[le:le + 4] == b"\r\n\r\n":
                            te = le
                        else:
                            return None
                    del buf[:te + 4]
                    break
                if len(buf) < le + 2 + size + 2:
                    return None
                chunks.append(bytes(buf[le + 2:le + 2 + size]))
                pos = le + 2 + size + 2
            body = b"".join(chunks)
        else:
            if not self.closed:
                return None
            body = bytes(buf[start:])
            del buf[:]
        return Response(status, headers, body)

    async def roundtrip(self, data):
        if self.closed:
            raise HttpError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        self._check()
        try:
            return await self.waiter
        finally:
            self.waiter = None


class Client:
    """A keep-alive connection to HOST:PORT that reconnects when the server closes it."""

    def __init__(self, host, port, timeout=30.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.proto = None

    async def _connect(self):
        loop = asyncio.get_running_loop()
        _, self.proto = await loop.create_connection(_Proto, self.host, self.port)

    def close(self):
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None

    async def request(self, method, path, body=None, headers=()):
        data = ["%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)]
        for k, v in headers:
            data.append("%s: %s\r\n" % (k, v))
        if body is not None:
            data.append("Content-Length: %d\r\n" % len(body))
        data.append("\r\n")
        raw = "".join(data).encode("latin-1") + (body or b"")
        for attempt in (1, 2):
            fresh = self.proto is None or self.proto.closed
            if fresh:
                await self._connect()
            try:
                r = await asyncio.wait_for(self.proto.roundtrip(raw), self.timeout)
            except HttpError:
                self.close()
                # A kept connection the server closed just before we wrote: retry once on a new one (our
                # requests are either idempotent or were never received, nginx closes only between requests).
                if fresh or attempt == 2:
                    raise
                continue
            except asyncio.TimeoutError:
                self.close()
                raise HttpError("time-out after %.0f s: %s %s" % (self.timeout, method, path))
            if r.headers.get("connection", "").lower() == "close":
                self.close()
            return r
        raise HttpError("unreachable")


def json_body(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


JSON_HEADERS = (("Content-Type", "application/json"),)


async def create_task(client, query):
    """POST /api/tasks. Returns (status, id or None, time sent, time answered)."""
    t = time.time()
    r = await client.request("POST", "/api/tasks", json_body({"query": query}), JSON_HEADERS)
    t2 = time.time()
    tid = None
    if r.status == 202:
        tid = json.loads(r.body)["id"]
    return r.status, tid, t, t2, r


_LONG_RE = re.compile(r"\[mock:long=(\d+)\]", re.IGNORECASE)


def expected_reply(prompt):
    """The mock's reply (see its docstring): "Mock reply to: " + prompt [+ " word1 ... wordN" for [mock:long=N]]."""
    text = "Mock reply to: " + prompt
    m = _LONG_RE.search(prompt)
    if m and int(m.group(1)) > 0:
        text += " " + " ".join("word%d" % i for i in range(1, int(m.group(1)) + 1))
    return text


# ------------------------------------------------------------------------------------------------------------
# probe


def mode_probe(args):
    """Blocking loop on one connection: precise, and in its own process."""
    stop = {"flag": False}

    def on_signal(*_):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    samples = []
    errors = []
    statuses = {}
    sock = None
    req = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % args.path).encode()
    end = time.time() + args.duration
    buf = bytearray()

    def connect():
        s = socket.create_connection((args.host, args.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    while not stop["flag"] and time.time() < end:
        try:
            if sock is None:
                sock = connect()
                buf.clear()
            t0 = time.perf_counter()
            wall = time.time()
            sock.sendall(req)
            # Read one response (Content-Length bodies only: /check always has one).
            while True:
                he = buf.find(b"\r\n\r\n")
                if he >= 0:
                    head = bytes(buf[:he]).decode("latin-1")
                    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                    n = int(m.group(1)) if m else 0
                    if len(buf) >= he + 4 + n:
                        break
                data = sock.recv(65536)
                if not data:
                    raise OSError("connection closed")
                buf += data
            dt = time.perf_counter() - t0
            status = int(head.split(" ", 2)[1])
            del buf[:he + 4 + n]
            statuses[status] = statuses.get(status, 0) + 1
            samples.append((round(wall, 6), round(dt, 6), status))
            if re.search(r"(?im)^connection:\s*close", head):
                sock.close()
                sock = None
        except (OSError, ValueError, IndexError) as e:
            errors.append(str(e))
            if sock is not None:
                sock.close()
                sock = None
            time.sleep(0.01)
        if args.interval > 0:
            time.sleep(args.interval)
    if sock is not None:
        sock.close()
    json.dump({"samples": samples, "errors": errors[:20], "error_count": len(errors),
               "statuses": {str(k): v for k, v in statuses.items()}}, sys.stdout)
    sys.stdout.write("\n")
    return 0


class Probe:
    """Runs `loadgen.py probe` in a subprocess."""

    def __init__(self, args, path, interval):
        cmd = [sys.executable, os.path.abspath(__file__), "probe", "--host", args.host, "--port", str(args.port),
               "--path", path, "--interval", str(interval), "--duration", str(args.deadline)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        data = json.loads(out or b"{}")
        return data

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def probe_window(data, start, end):
    """Latencies (s) of the probe samples taken between two wall times, and their statuses."""
    lat = [dt for (w, dt, st) in data.get("samples", []) if start <= w <= end]
    bad = sum(1 for (w, dt, st) in data.get("samples", []) if start <= w <= end and st != 200)
    return lat, bad


# ------------------------------------------------------------------------------------------------------------
# tasks (part 2)


async def run_pool(n, concurrency, clients, work):
    """Runs work(client, i) for i in range(n) with `concurrency` workers, worker k using clients[k]."""
    it = iter(range(n))

    async def worker(k):
        for i in it:
            await work(clients[k], i)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))


async def verify_tasks(args, clients, ids, prompts, deadline, first_wait, report):
    """Polls GET /api/tasks/ID until every task has finished or the deadline passes; checks each reply."""
    pending = set(i for i in range(len(ids)) if ids[i] is not None)
    finished_at = {}
    seen_at = {}
    wrong = []
    failed = []
    bad_status = {}
    await asyncio.sleep(max(0.0, first_wait - time.time()))
    sweeps = 0
    while pending and time.time() < deadline:
        sweeps += 1
        todo = sorted(pending)

        async def check(client, j):
            i = todo[j]
            try:
                r = await client.request("GET", "/api/tasks/%s" % ids[i])
            except (HttpError, OSError) as e:
                report["errors"].append("poll %s: %s" % (ids[i], e))
                return
            if r.status != 200:
                bad_status[r.status] = bad_status.get(r.status, 0) + 1
                pending.discard(i)
                return
            obj = json.loads(r.body)
            st = obj.get("status")
            if st in ("queued", "running"):
                return
            pending.discard(i)
            seen_at[i] = time.time()
            finished_at[i] = parse_rfc3339(obj.get("finished_at"))
            if st != "succeeded":
                failed.append((ids[i], st, (obj.get("error") or {}).get("type")))
            elif obj.get("result") != expected_reply(prompts[i]):
                wrong.append((ids[i], obj.get("result")))

        # A few connections only: the check is part of the harness, not of the load being measured.
        await run_pool(len(todo), min(args.verify_concurrency, len(clients), len(todo)), clients, check)
        if pending:
            await asyncio.sleep(0.2)
    report["verify_sweeps"] = sweeps
    report["verify_concurrency"] = args.verify_concurrency
    report["unfinished"] = len(pending)
    report["wrong_replies"] = len(wrong)
    report["failed"] = len(failed)
    report["poll_statuses"] = {str(k): v for k, v in bad_status.items()}
    if wrong:
        report["errors"].append("wrong reply for %s: %r" % wrong[0])
    if failed:
        report["errors"].append("task %s ended %s (%s)" % failed[0])
    if pending:
        report["errors"].append("%d tasks unfinished at the deadline" % len(pending))
    if bad_status:
        report["errors"].append("unexpected statuses while polling: %r" % bad_status)
    return finished_at, seen_at


async def mode_tasks_async(args):
    report = {"mode": "tasks", "n": args.n, "errors": []}
    clients = [Client(args.host, args.port) for _ in range(args.concurrency)]
    rss = RssSampler(args.pid)
    idle = proc_status(args.pid) if args.pid else None
    cpu0 = proc_cpu_seconds(args.pid) if args.pid else None
    mcpu0 = machine_cpu()
    report["idle_rss_kib"] = idle and idle["VmRSS"]
    report["idle_fds"] = idle and idle["fds"]
    deadline = time.time() + args.deadline
    prompts = ["%s %d" % (args.prefix, i) for i in range(args.n)]
    ids = [None] * args.n
    statuses = {}
    rss.start()

    # Task 0 first: the probe polls its /check during the whole load.
    t0 = time.time()
    st, tid, _, _, r = await create_task(clients[0], prompts[0])
    statuses[st] = statuses.get(st, 0) + 1
    if tid is None:
        report["errors"].append("first POST /api/tasks answered %d: %r" % (st, r.body[:200]))
        rss.stop()
        return report
    ids[0] = tid
    probe = Probe(args, "/check?task_id=%s" % tid, args.probe_interval)
    try:
        async def create(client, i):
            try:
                st, tid, _, _, r = await create_task(client, prompts[i])
            except (HttpError, OSError) as e:
                report["errors"].append("create %d: %s" % (i, e))
                return
            statuses[st] = statuses.get(st, 0) + 1
            ids[i] = tid
            if tid is None and len(report["errors"]) < 20:
                report["errors"].append("create %d answered %d: %r" % (i, st, r.body[:200]))

        await run_pool(args.n - 1, args.concurrency, clients, lambda c, i: create(c, i + 1))
        t_created = time.time()
        report["created_202"] = statuses.get(202, 0)
        report["create_statuses"] = {str(k): v for k, v in statuses.items()}
        report["create_seconds"] = round(t_created - t0, 3)
        report["create_rps"] = round(args.n / max(1e-9, t_created - t0), 1)
        st_mid = proc_status(args.pid) if args.pid else None
        finished_at, seen_at = await verify_tasks(args, clients, ids, prompts, deadline,
                                                  t0 + args.latency - 0.5, report)
        t_end = time.time()
    finally:
        probe_data = probe.stop()
        rss.stop()
        for c in clients:
            c.close()
    done = [v for v in finished_at.values() if v is not None]
    last_done = max(done) if done else None
    first_done = min(done) if done else None
    report["completed_ok"] = len(finished_at) - report["failed"] - report["wrong_replies"]
    report["wall_seconds"] = round(last_done - t0, 3) if last_done else None
    report["first_result_seconds"] = round(first_done - t0, 3) if first_done else None
    report["wall_seen_seconds"] = round(max(seen_at.values()) - t0, 3) if seen_at else None
    end = proc_status(args.pid) if args.pid else None
    cpu1 = proc_cpu_seconds(args.pid) if args.pid else None
    report["machine_busy_pct"] = busy_pct(mcpu0, machine_cpu())
    if cpu0 is not None and cpu1 is not None:
        report["backend_cpu_seconds"] = round(cpu1 - cpu0, 2)
        report["backend_cpu_us_per_task"] = round((cpu1 - cpu0) * 1e6 / max(1, args.n), 1)
    report["peak_rss_kib"] = end and end["VmHWM"]
    report["sampled_peak_rss_kib"] = rss.peak_kib()
    report["in_flight_rss_kib"] = st_mid and st_mid["VmRSS"]
    if report["idle_rss_kib"] and report["peak_rss_kib"]:
        over = report["peak_rss_kib"] - report["idle_rss_kib"]
        report["rss_over_idle_mib"] = round(over / 1024.0, 1)
        report["rss_per_task_kib"] = round(over / max(1, args.n), 2)
    lat_all, bad_all = probe_window(probe_data, t0, t_end)
    lat_create, _ = probe_window(probe_data, t0, t_created)
    lat_wait, _ = probe_window(probe_data, t_created, (first_done or t_end))
    lat_done, _ = probe_window(probe_data, (first_done or t_end), t_end)
    report["check"] = summary_ms(lat_all)
    report["check_creating"] = summary_ms(lat_create)
    report["check_in_flight"] = summary_ms(lat_wait)
    report["check_completing"] = summary_ms(lat_done)
    report["check_non200"] = bad_all
    report["check_probe_errors"] = probe_data.get("error_count", 0)
    if probe_data.get("error_count"):
        report["errors"].append("probe: %s" % probe_data.get("errors")[:3])
    report["created_all"] = report["created_202"] == args.n
    if not report["created_all"]:
        report["errors"].append("only %d of %d tasks created (202)" % (report["created_202"], args.n))
    return report


# ------------------------------------------------------------------------------------------------------------
# streams (part 3)

_WORD_RE = re.compile(r"\S+\s*|\s+")  # the mock's split_deltas


class _SSEProto(asyncio.Protocol):
    """One GET of an event stream: records (arrival time, event id) for each event with an id."""

    def __init__(self, path, done, request=None, direct=False):
        self.path = path
        self.done = done
        # direct: a streaming Messages call to the mock itself; events are counted (the delta's index), not read
        # by id, and message_stop ends the stream.
        self.request = request
        self.direct = direct
        self.delta_index = 0
        self.buf = bytearray()
        self.headers_done = False
        self.chunked = False
        self.status = None
        self.text = bytearray()  # de-chunked body not yet split into events
        self.events = []  # (time, id, event name)
        self.opened_at = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        if self.request is not None:
            transport.write(self.request)
            return
        transport.write(("GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
                         % self.path).encode())

    def data_received(self, data):
        now = time.time()
        self.buf += data
        if not self.headers_done:
            he = self.buf.find(b"\r\n\r\n")
            if he < 0:
                return
            head = bytes(self.buf[:he]).decode("latin-1")
            self.status = int(head.split(" ", 2)[1])
            self.chunked = bool(re.search(r"(?im)^transfer-encoding:\s*chunked", head))
            del self.buf[:he + 4]
            self.headers_done = True
            self.opened_at = now
            if self.status != 200:
                self._finish()
                return
        if self.chunked:
            while True:
                le = self.buf.find(b"\r\n")
                if le < 0:
                    break
                size = int(bytes(self.buf[:le]).split(b";")[0], 16)
                if size == 0:
                    self._events(now)
                    self._finish()
                    return
                if len(self.buf) < le + 2 + size + 2:
                    break
                self.text += self.buf[le + 2:le + 2 + size]
                del self.buf[:le + 2 + size + 2]
        else:
            self.text += self.buf
            self.buf.clear()
        self._events(now)

    def _events(self, now):
        while True:
            e = self.text.find(b"\n\n")
            if e < 0:
                return
            block = bytes(self.text[:e]).decode("utf-8", "replace")
            del self.text[:e + 2]
            eid = None
            name = "message"
            for line in block.split("\n"):
                if line.startswith("id:"):
                    eid = line[3:].strip()
                elif line.startswith("event:"):
                    name = line[6:].strip()
            if self.direct:
                if name == "content_block_delta":
                    self.events.append((now, self.delta_index, "delta"))
                    self.delta_index += 1
                elif name == "message_stop":
                    self._finish()
                    return
                continue
            if eid is not None:
                # RUN-BYTES (the offset in UTF-8 bytes of run RUN's text), or a plain offset.
                self.events.append((now, int(eid.rsplit("-", 1)[-1]), name))
            if name == "done":
                self._finish()
                return

    def _finish(self):
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc):
        self._finish()


def load_delta_log(path):
    """prompt -> {index: emission time} from the mock's --delta-log (JSON lines {"p","i","t"})."""
    out = {}
    with open(path) as f:
        for line in f:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            out.setdefault(o["p"], {})[o["i"]] = o["t"]
    return out


def record_delays(report, n, statuses, got_all, delays, skipped, missing):
    """The delivery figures both stream modes report, and their errors."""
    report["stream_statuses"] = {str(k): v for k, v in statuses.items()}
    report["streams_complete"] = got_all
    report["deltas_measured"] = len(delays)
    report["deltas_before_open"] = skipped
    report["deltas_missing"] = missing
    report["delay"] = summary_ms(delays)
    if got_all != n:
        report["errors"].append("%d of %d streams delivered the whole reply" % (got_all, n))
    if missing:
        report["errors"].append("%d deltas missing (not logged by the mock, or never received)" % missing)


async def mode_streams_async(args):
    report = {"mode": "streams", "n": args.n, "errors": []}
    loop = asyncio.get_running_loop()
    clients = [Client(args.host, args.port) for _ in range(min(args.concurrency, args.n))]
    prompts = ["%s %d [mock:long=%d]" % (args.prefix, i, args.words) for i in range(args.n)]
    ids = [None] * args.n
    protos = [None] * args.n
    dones = [loop.create_future() for _ in range(args.n)]
    deadline = time.time() + args.deadline
    cpu0 = proc_cpu_seconds(args.pid) if args.pid else None
    mcpu0 = machine_cpu()
    t0 = time.time()
    st, tid, _, _, r = await create_task(clients[0], prompts[0])
    if tid is None:
        report["errors"].append("first POST /api/tasks answered %d: %r" % (st, r.body[:200]))
        return report
    ids[0] = tid
    probe = Probe(args, "/check?task_id=%s" % tid, args.probe_interval)
    try:
        async def open_stream(i):
            path = "/api/tasks/%s/events" % ids[i]
            _, protos[i] = await loop.create_connection(lambda: _SSEProto(path, dones[i]), args.host, args.port)

        async def create_and_open(client, i):
            try:
                if i > 0:
                    st, tid, _, _, r = await create_task(client, prompts[i])
                    if tid is None:
                        report["errors"].append("create %d answered %d" % (i, st))
                        dones[i].set_result(None)
                        return
                    ids[i] = tid
                await open_stream(i)
            except (HttpError, OSError) as e:
                report["errors"].append("stream %d: %s" % (i, e))
                if not dones[i].done():
                    dones[i].set_result(None)

        await run_pool(args.n, len(clients), clients, create_and_open)
        t_open = time.time()
        report["open_seconds"] = round(t_open - t0, 3)
        left = max(1.0, deadline - time.time())
        _, not_done = await asyncio.wait(dones, timeout=left)
        t_end = time.time()
        report["machine_busy_pct"] = busy_pct(mcpu0, machine_cpu())
        cpu1 = proc_cpu_seconds(args.pid) if args.pid else None
        if cpu0 is not None and cpu1 is not None:
            report["backend_cpu_seconds"] = round(cpu1 - cpu0, 2)
        if not_done:
            report["errors"].append("%d streams unfinished at the deadline" % len(not_done))
    finally:
        probe_data = probe.stop()
        for p in protos:
            if p is not None and p.transport is not None:
                p.transport.close()
        for c in clients:
            c.close()
    await asyncio.sleep(0.5)  # the mock's log lines of the last deltas
    emitted = load_delta_log(args.delta_log)
    delays = []
    skipped = 0
    missing = 0
    statuses = {}
    got_all = 0
    for i in range(args.n):
        p = protos[i]
        if p is None:
            continue
        statuses[p.status] = statuses.get(p.status, 0) + 1
        em = emitted.get(prompts[i], {})
        deltas = _WORD_RE.findall(expected_reply(prompts[i]))
        ends = []
        total = 0
        for d in deltas:
            total += len(d.encode("utf-8"))  # event ids count UTF-8 bytes
            ends.append(total)
        ev = [(t, eid) for (t, eid, name) in p.events if name == "delta"]
        if ev and ev[-1][1] == total:
            got_all += 1
        k = 0
        for idx, end in enumerate(ends):
            while k < len(ev) and ev[k][1] < end:
                k += 1
            if idx not in em:
                missing += 1
                continue
            if k >= len(ev):
                missing += 1
                continue
            # Count only deltas emitted after this stream was open: earlier ones arrive as a replay.
            if p.opened_at is None or em[idx] < p.opened_at:
                skipped += 1
                continue
            delays.append(ev[k][0] - em[idx])
    record_delays(report, args.n, statuses, got_all, delays, skipped, missing)
    if report.get("backend_cpu_seconds") is not None and delays:
        report["backend_cpu_us_per_delta"] = round(report["backend_cpu_seconds"] * 1e6 / (len(delays) + skipped), 1)
    report["negative_delays"] = sum(1 for d in delays if d < 0)
    lat, bad = probe_window(probe_data, t_open, t_end)
    report["check"] = summary_ms(lat)
    report["check_non200"] = bad
    report["check_probe_errors"] = probe_data.get("error_count", 0)
    report["wall_seconds"] = round(t_end - t0, 3)
    return report


async def mode_streams_direct_async(args):
    """Part 3's floor: the same streams, read by this client straight from the mock (--port is the mock's): one
    streaming Messages call per stream (opened by --concurrency workers, each connecting then going on to the
    next), and the same delay per delta from the mock's --delta-log, with no nginx and no backend in between."""
    report = {"mode": "streams_direct", "n": args.n, "errors": []}
    loop = asyncio.get_running_loop()
    prompts = ["%s %d [mock:long=%d]" % (args.prefix, i, args.words) for i in range(args.n)]
    protos = [None] * args.n
    dones = [loop.create_future() for _ in range(args.n)]
    deadline = time.time() + args.deadline
    mcpu0 = machine_cpu()
    t0 = time.time()

    def request(prompt):
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        return (b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"x-api-key: bench\r\nanthropic-version: 2023-06-01\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    async def open_stream(_client, i):
        try:
            _, protos[i] = await loop.create_connection(
                lambda: _SSEProto("/v1/messages", dones[i], request=request(prompts[i]), direct=True),
                args.host, args.port)
        except OSError as e:
            report["errors"].append("stream %d: %s" % (i, e))
            if not dones[i].done():
                dones[i].set_result(None)

    await run_pool(args.n, min(args.concurrency, args.n), [None] * min(args.concurrency, args.n), open_stream)
    t_open = time.time()
    report["open_seconds"] = round(t_open - t0, 3)
    _, not_done = await asyncio.wait(dones, timeout=max(1.0, deadline - time.time()))
    report["machine_busy_pct"] = busy_pct(mcpu0, machine_cpu())
    if not_done:
        report["errors"].append("%d streams unfinished at the deadline" % len(not_done))
    for p in protos:
        if p is not None and p.transport is not None:
            p.transport.close()
    await asyncio.sleep(0.5)  # the mock's log lines of the last deltas
    emitted = load_delta_log(args.delta_log)
    delays, skipped, missing, got_all, statuses = [], 0, 0, 0, {}
    for i in range(args.n):
        p = protos[i]
        if p is None:
            continue
        statuses[p.status] = statuses.get(p.status, 0) + 1
        em = emitted.get(prompts[i], {})
        count = len(_WORD_RE.findall(expected_reply(prompts[i])))
        if p.delta_index == count:
            got_all += 1
        for t, idx, _ in p.events:
            if idx not in em:
                missing += 1
            elif p.opened_at is None or em[idx] < p.opened_at:
                skipped += 1
            else:
                delays.append(t - em[idx])
        missing += max(0, count - p.delta_index)
    record_delays(report, args.n, statuses, got_all, delays, skipped, missing)
    report["wall_seconds"] = round(time.time() - t0, 3)
    return report


# ------------------------------------------------------------------------------------------------------------
# soak (part 5)


async def mode_soak_async(args):
    report = {"mode": "soak", "n": args.n, "concurrency": args.concurrency, "prefix": args.prefix, "errors": []}
    clients = [Client(args.host, args.port) for _ in range(args.concurrency)]
    deadline = time.time() + args.deadline
    counts = {"created": 0, "succeeded": 0, "wrong": 0, "failed": 0, "polls": 0}
    statuses = {}
    cpu0 = proc_cpu_seconds(args.pid) if args.pid else None
    t0 = time.time()

    async def one(client, i):
        if time.time() > deadline:
            return
        prompt = "%s %d" % (args.prefix, i)
        try:
            st, tid, _, _, r = await create_task(client, prompt)
            statuses[st] = statuses.get(st, 0) + 1
            if tid is None:
                if len(report["errors"]) < 10:
                    report["errors"].append("create %d answered %d: %r" % (i, st, r.body[:120]))
                return
            counts["created"] += 1
            await asyncio.sleep(args.latency)
            while time.time() < deadline:
                counts["polls"] += 1
                r = await client.request("GET", "/api/tasks/%s" % tid)
                if r.status != 200:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    if len(report["errors"]) < 10:
                        report["errors"].append("poll %s answered %d" % (tid, r.status))
                    return
                obj = json.loads(r.body)
                if obj["status"] in ("queued", "running"):
                    await asyncio.sleep(args.poll)
                    continue
                if obj["status"] != "succeeded":
                    counts["failed"] += 1
                    if len(report["errors"]) < 10:
                        report["errors"].append("task %s ended %s" % (tid, obj["status"]))
                elif obj.get("result") != expected_reply(prompt):
                    counts["wrong"] += 1
                    if len(report["errors"]) < 10:
                        report["errors"].append("task %s: wrong reply %r" % (tid, obj.get("result")))
                else:
                    counts["succeeded"] += 1
                return
        except (HttpError, OSError, ValueError, KeyError) as e:
            if len(report["errors"]) < 10:
                report["errors"].append("task %d: %s" % (i, e))

    await run_pool(args.n, args.concurrency, clients, one)
    for c in clients:
        c.close()
    t1 = time.time()
    report.update(counts)
    report["statuses"] = {str(k): v for k, v in statuses.items()}
    report["seconds"] = round(t1 - t0, 3)
    report["tasks_per_second"] = round(counts["succeeded"] / max(1e-9, t1 - t0), 1)
    cpu1 = proc_cpu_seconds(args.pid) if args.pid else None
    if cpu0 is not None and cpu1 is not None:
        report["backend_cpu_seconds"] = round(cpu1 - cpu0, 2)
        report["backend_cpu_us_per_task"] = round((cpu1 - cpu0) * 1e6 / max(1, args.n), 1)
    if counts["succeeded"] != args.n and not report["errors"]:
        report["errors"].append("%d of %d tasks succeeded (deadline?)" % (counts["succeeded"], args.n))
    return report


# ------------------------------------------------------------------------------------------------------------
# coldstart (part 6)


def mode_coldstart(args):
    """Starts the command, then GET PATH every 2 ms until it answers 200; prints the time; stops the command."""
    req = ("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % args.path).encode()

    def status_once():
        try:
            with socket.create_connection((args.host, args.port), timeout=2) as s:
                s.sendall(req)
                data = b""
                while b"\r\n" not in data:
                    part = s.recv(4096)
                    if not part:
                        break
                    data += part
                return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
        except (OSError, ValueError, IndexError):
            return None

    log = open(args.log, "ab") if args.log else subprocess.DEVNULL
    t0 = time.time()
    proc = subprocess.Popen(args.cmd, stdout=log, stderr=log, start_new_session=True)
    report = {"mode": "coldstart", "pid": proc.pid, "errors": []}

    def stop_proc(*_):
        if proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, lambda *a: (stop_proc(), sys.exit(1)))
    tries = 0
    first = None
    try:
        while time.time() - t0 < args.deadline:
            tries += 1
            if status_once() == 200:
                first = time.time()
                break
            if proc.poll() is not None:
                report["errors"].append("the process exited with %s before answering" % proc.returncode)
                break
            time.sleep(0.002)
    finally:
        stop_proc()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    report["tries"] = tries
    report["exit_code"] = proc.returncode
    if first is None:
        if not report["errors"]:
            report["errors"].append("no 200 within %.0f s" % args.deadline)
    else:
        report["seconds"] = round(first - t0, 4)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 1 if report["errors"] else 0


# ------------------------------------------------------------------------------------------------------------


async def mode_pending_async(args):
    c = Client(args.host, args.port)
    st, tid, _, _, r = await create_task(c, args.prefix)
    c.close()
    if tid is None:
        sys.stderr.write("POST /api/tasks answered %d: %r\n" % (st, r.body[:200]))
        return 1
    print(tid)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                usage="%(prog)s MODE --port PORT [options] [-- COMMAND...]")
    p.add_argument("mode", choices=["probe", "tasks", "streams", "streams-direct", "soak", "coldstart", "pending",
                                    "memory"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="nginx's plain-HTTP port")
    p.add_argument("--n", type=int, default=1000, help="tasks / streams")
    p.add_argument("--concurrency", type=int, default=64, help="connections (soak: workers)")
    p.add_argument("--verify-concurrency", type=int, default=8, help="tasks: connections checking the results")
    p.add_argument("--prefix", default="bench task", help="prompt prefix")
    p.add_argument("--latency", type=float, default=10.0, help="the mock's latency (s)")
    p.add_argument("--poll", type=float, default=0.05, help="soak: seconds between polls of one task")
    p.add_argument("--words", type=int, default=40, help="streams: extra words per reply ([mock:long=N])")
    p.add_argument("--delta-log", help="streams: the mock's --delta-log file")
    p.add_argument("--pid", type=int, default=0, help="the backend's pid (RSS, fds)")
    p.add_argument("--deadline", type=float, default=120.0, help="give up after this many seconds")
    p.add_argument("--path", default="/", help="probe/coldstart: the path to GET")
    p.add_argument("--interval", type=float, default=0.005, help="probe: pause between requests (s)")
    p.add_argument("--duration", type=float, default=600.0, help="probe: longest run (s)")
    p.add_argument("--probe-interval", type=float, default=0.005, help="tasks/streams: the probe's pause (s)")
    p.add_argument("--log", help="coldstart: append the command's output here")
    p.add_argument("--upstream-port", type=int, default=0, help="memory: the mock's port (curl's connections)")
    argv = sys.argv[1:]
    cmd = []
    if "--" in argv:
        cmd = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    args = p.parse_args(argv)
    args.cmd = cmd
    if args.mode == "coldstart" and not cmd:
        p.error("coldstart needs the command after --")

    if args.mode == "probe":
        return mode_probe(args)
    if args.mode == "coldstart":
        return mode_coldstart(args)
    if args.mode == "pending":
        return asyncio.run(mode_pending_async(args))
    if args.mode == "memory":
        st = proc_status(args.pid)
        if st is None:
            sys.stderr.write("no process %d\n" % args.pid)
            return 1
        fds = proc_fds(args.pid, args.upstream_port)
        snapshot = {"rss_kib": st["VmRSS"], "hwm_kib": st["VmHWM"], "fds": fds["total"],
                    "upstream_fds": fds["upstream"], "other_fds": fds["other"],
                    "cpu_seconds": proc_cpu_seconds(args.pid)}
        if args.port:
            # The process's own heap figures (glibc's mallinfo2, from its status page): in use vs held.
            status = json.loads(http_get_text(args.port, "/status?json"))
            for key in ("heap_in_use_bytes", "heap_held_bytes"):
                if key in status:
                    snapshot[key] = status[key]
        json.dump(snapshot, sys.stdout)
        sys.stdout.write("\n")
        return 0
    fn = {"tasks": mode_tasks_async, "streams": mode_streams_async, "streams-direct": mode_streams_direct_async,
          "soak": mode_soak_async}[args.mode]
    report = asyncio.run(fn(args))
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
