#!/usr/bin/env python3
"""Tests/Cluster/cluster.py: the cluster suite's load client and analysers (standard library only).

Run by Tests/Cluster/run.sh; the client commands run inside the client host's network namespace and only ever
reach the suite's own hosts (the front ends given with --fronts). Every loop is bounded in count and time.

Client commands
    submit   POST /api/tasks for COUNT unique prompts, round robin over the front ends; one JSON line per task:
             {"k", "prompt", "front", "http", "id", "t", "may_lose", "tried"}. A task is accepted when it got a 202.
             Like a careful client, it tries again on 429, 502 and 503 (which create nothing) through the next
             front end, at most 3 more times 0.5 s apart, each time with a new prompt ("... task K retry N ..."),
             so that a task created in spite of a 503 could never be mistaken for the accepted one; never after a
             timeout (the task may exist).
    wait     Polls every accepted task (GET /api/tasks/ID, any front end) until it is finished (succeeded, failed,
             cancelled), or answered 404 twice in a row, or the deadline passes; one JSON line per task with the
             last answer and every HTTP status seen.

Analysers (each prints `PASS name` / `FAIL name: details` lines, what scripts/test counts)
    check    The checks after one scenario: final state and text of every accepted task, no task cancelled, no two
             upstream calls of one prompt overlapping (mock call log), the in-flight peak (call log and the mock's
             max_concurrent_streams) within the limit, every stream ended with the final text. Appends a row to
             the results table (a JSON lines file).
    sample   Prints {"NAME": {"pid", "cpu_s", "rss_kb"}} for NAME=PID pairs (/proc/PID/stat utime+stime,
             /proc/PID/status VmRSS).
    idle     Compares two samples: CPU used in between and RSS growth against limits, one line per process.
    table    Prints the results table (Markdown) from the rows file.

The mock's reply to prompt P is "Mock reply to: P" (mock/anthropic_mock.py).
"""

import argparse
import http.client
import json
import os
import ssl
import sys
import time

TERMINAL = ("succeeded", "failed", "cancelled")
# The comment line cl_stream (lib.sh) writes before each connection of a stream capture.
CONNECTION_MARKER = ": cluster-suite connection"


def expected_text(prompt):
    return "Mock reply to: " + prompt


def read_lines(path):
    out = []
    if not path or not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


# ---------------------------------------------------------------------------------------------------------------
# Client


class Fronts:
    """HTTPS to the front ends (nginx on each backend host), verified against the suite's own CA."""

    def __init__(self, fronts, cacert, timeout):
        self.fronts = fronts
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cacert)

    def request(self, front, method, path, body=None):
        """(status, parsed JSON or None, raw text); status 0 when there was no answer."""
        conn = http.client.HTTPSConnection(front, 443, timeout=self.timeout, context=self.context)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = None
            return resp.status, obj, raw
        except (OSError, http.client.HTTPException, ssl.SSLError) as error:
            return 0, None, "no answer: %s" % error
        finally:
            conn.close()


def cmd_submit(args):
    fronts = Fronts(args.fronts.split(","), args.cacert, args.timeout)
    with open(args.out, "a", encoding="utf-8") as out:
        for i in range(args.count):
            k = args.first + i
            started = time.time()
            tried = []
            for attempt in range(4):
                retry = "" if attempt == 0 else " retry %d" % attempt
                prompt = "cluster %s task %d%s [mock:latency=%s]" % (args.scenario, k, retry, args.latency)
                front = fronts.fronts[(k - 1 + attempt) % len(fronts.fronts)]
                tried.append(prompt)
                t = time.time()
                status, obj, raw = fronts.request(front, "POST", "/api/tasks", json.dumps({"query": prompt}))
                if status not in (429, 502, 503):
                    break
                time.sleep(0.5)
            ident = obj.get("id") if isinstance(obj, dict) and status == 202 else None
            out.write(json.dumps({"k": k, "prompt": prompt, "front": front, "http": status, "id": ident,
                                  "t": t, "may_lose": args.may_lose, "tried": tried,
                                  "answer": None if status == 202 else raw[:200]}) + "\n")
            out.flush()
            if i + 1 < args.count:
                time.sleep(max(0.0, args.spacing - (time.time() - started)))
    return 0


def cmd_wait(args):
    fronts = Fronts(args.fronts.split(","), args.cacert, args.timeout)
    tasks = [t for t in read_lines(args.tasks) if t.get("id")]
    state = {t["id"]: {"task": t, "last": None, "status": "timeout", "seen": {}, "polls": 0, "not_found": 0}
             for t in tasks}
    pending = [t["id"] for t in tasks]
    deadline = time.monotonic() + args.deadline
    turn = 0
    # Bounded: at most this many rounds, and never past the deadline.
    for _ in range(10000):
        if not pending or time.monotonic() > deadline:
            break
        still = []
        for ident in pending:
            if time.monotonic() > deadline:
                still.append(ident)
                continue
            s = state[ident]
            front = fronts.fronts[turn % len(fronts.fronts)]
            turn += 1
            status, obj, raw = fronts.request(front, "GET", "/api/tasks/%s" % ident)
            s["polls"] += 1
            s["seen"][str(status)] = s["seen"].get(str(status), 0) + 1
            if status == 200 and isinstance(obj, dict) and obj.get("status") in TERMINAL:
                s["last"] = obj
                s["status"] = obj["status"]
                continue
            if status == 404:
                s["not_found"] += 1
                s["last"] = obj
                if s["not_found"] >= 2:
                    s["status"] = "not_found"
                    continue
            else:
                s["not_found"] = 0
                if status == 200:
                    s["last"] = obj
            still.append(ident)
        pending = still
        if pending:
            time.sleep(args.interval)
    with open(args.out, "w", encoding="utf-8") as out:
        for t in tasks:
            s = state[t["id"]]
            out.write(json.dumps({"k": t["k"], "id": t["id"], "prompt": t["prompt"], "may_lose": t["may_lose"],
                                  "status": s["status"], "last": s["last"], "seen": s["seen"],
                                  "polls": s["polls"]}) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Analysers


class Report:
    def __init__(self, scenario):
        self.scenario = scenario
        self.failed = 0

    def check(self, name, ok, details=""):
        name = "cluster %s: %s" % (self.scenario, name)
        if ok:
            print("PASS %s" % name)
        else:
            self.failed += 1
            details = " ".join(str(details).split())
            print("FAIL %s: %s" % (name, details[:600]))


def parse_sse(path):
    """The events of a stream file (several connections appended), each [name, id, data], as a browser's
    EventSource dispatches them: an event counts once the blank line that ends it has arrived, with the id last set
    on its connection. The line that starts each connection (": cluster-suite connection") drops an event its
    predecessor was cut inside of, and starts the new connection's id afresh."""
    events = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return events
    name, ident, data = "message", None, []
    # The last piece has no line end: empty, or a line a dropped connection cut, which a browser never parses.
    for line in text.split("\n")[:-1]:
        line = line.rstrip("\r")
        if line.startswith(CONNECTION_MARKER):
            name, ident, data = "message", None, []
        elif line == "":
            if data:
                events.append([name, ident, "\n".join(data)])
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                ident = value
    return events


def last_event_id(path):
    """The id a browser would send as Last-Event-ID when it reconnects: that of the last event dispatched (an event
    cut by a dropped connection does not count), or "" when none carried one."""
    events = [e for e in parse_sse(path) if e[1] is not None]
    return events[-1][1] if events else ""


def stream_ended(path):
    """Whether the stream has delivered its last event (done, or error)."""
    return any(name in ("done", "error") for name, _, _ in parse_sse(path))


def stream_outcome(path):
    """(final JSON of the done event or None, text rebuilt from deltas after the last reset, error event or None,
    connections)."""
    events = parse_sse(path)
    text, done, error = "", None, None
    for name, _, data in events:
        if name == "reset":
            text = ""
        elif name == "delta":
            try:
                text += json.loads(data)["text"]
            except (ValueError, KeyError, TypeError):
                pass  # a delta cut by a dropped connection: the reconnect resends it
        elif name == "error":
            try:
                error = json.loads(data)
            except ValueError:
                error = {"raw": data}
        elif name == "done":
            try:
                done = json.loads(data)
            except ValueError:
                done = {"raw": data}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            connections = f.read().count(CONNECTION_MARKER)
    except OSError:
        connections = 0
    return done, text, error, connections


def overlaps(calls, tolerance):
    """Per prompt, the most calls running at once (a later call starting before an earlier one ended, less the
    tolerance), and the list of overlapping pairs."""
    by_prompt = {}
    for c in calls:
        by_prompt.setdefault(c.get("prompt"), []).append(c)
    worst, pairs = 0, []
    for prompt, cs in by_prompt.items():
        cs.sort(key=lambda c: c["start"])
        worst = max(worst, peak([c for c in cs], tolerance))
        for i in range(len(cs)):
            for j in range(i + 1, len(cs)):
                if cs[j]["start"] < cs[i]["end"] - tolerance:
                    pairs.append((prompt, cs[i], cs[j]))
    return worst, pairs


def peak(calls, tolerance=0.0):
    """Most calls in flight at once (an end at the same instant as a start counts first)."""
    points = []
    for c in calls:
        points.append((c["start"], 1))
        points.append((max(c["start"], c["end"] - tolerance), -1))
    points.sort(key=lambda p: (p[0], p[1]))
    best = cur = 0
    for _, d in points:
        cur += d
        best = max(best, cur)
    return best


def cmd_check(args):
    r = Report(args.scenario)
    tasks = read_lines(args.tasks)
    results = {x["id"]: x for x in read_lines(args.results)}
    accepted = [t for t in tasks if t.get("id")]
    refused = [t for t in tasks if not t.get("id")]
    hosts = dict(pair.split("=", 1) for pair in args.hosts.split(",")) if args.hosts else {}

    # --- Final state and text of every accepted task
    ok_count, lost, bad, cancelled, hung, five_hundreds = 0, [], [], [], [], []
    for t in accepted:
        res = results.get(t["id"], {"status": "timeout", "last": None, "seen": {}})
        last = res.get("last") or {}
        status = res["status"]
        if any(code.startswith("5") and code != "503" for code in res.get("seen", {})):
            five_hundreds.append("task %d saw HTTP %s" % (t["k"], sorted(res["seen"])))
        if status == "succeeded" and last.get("result") == expected_text(t["prompt"]):
            ok_count += 1
        elif status == "cancelled":
            cancelled.append("task %d" % t["k"])
        elif status == "timeout":
            hung.append("task %d last %s" % (t["k"], (last or {}).get("status")))
        elif status == "failed" and t.get("may_lose"):
            err = last.get("error") or {}
            if err.get("type") and err.get("message"):
                lost.append("task %d failed: %s" % (t["k"], err.get("type")))
            else:
                bad.append("task %d failed without a reason: %s" % (t["k"], json.dumps(last)[:120]))
        elif status == "not_found" and t.get("may_lose"):
            lost.append("task %d: 404" % t["k"])
        elif status == "succeeded":
            bad.append("task %d wrong text: %r" % (t["k"], (last.get("result") or "")[:80]))
        else:
            bad.append("task %d ended %s: %s" % (t["k"], status, json.dumps(last)[:160]))
    r.check("tasks were accepted (202)", len(accepted) >= max(1, args.min_accepted),
            "%d of %d accepted; refused: %s" % (len(accepted), len(tasks),
                                                 "; ".join("%s %s" % (x["http"], x.get("answer")) for x in refused)))
    may_lose = any(t.get("may_lose") for t in accepted)
    name = ("every accepted task succeeded with the mock's text, or (accepted before the data loss) ends with "
            "404 or a failure with a reason" if may_lose else "every accepted task succeeded with the mock's text")
    r.check(name, not bad and not hung, "; ".join(bad + ["not finished in time: " + h for h in hung]))
    r.check("no task was cancelled (nobody cancelled one)", not cancelled, ", ".join(cancelled))
    r.check("no HTTP 500 (or other 5xx than 503) while polling", not five_hundreds, "; ".join(five_hundreds))

    # --- Upstream calls: overlap per prompt, peak in flight
    calls = [c for c in read_lines(args.calls) if c.get("end", 0) >= args.since and c.get("start") is not None]
    prompts = {p for t in tasks for p in t.get("tried", [t["prompt"]])}
    mine = [c for c in calls if c.get("prompt") in prompts]
    worst, pairs = overlaps(mine, args.tolerance)
    details = []
    for prompt, a, b in pairs[:4]:
        details.append("%r: %s %.2f-%.2f and %s %.2f-%.2f" % (
            prompt.split(" [")[0], hosts.get(a.get("peer"), a.get("peer")), a["start"] - args.since,
            a["end"] - args.since, hosts.get(b.get("peer"), b.get("peer")), b["start"] - args.since,
            b["end"] - args.since))
    r.check("no two upstream calls of one task overlap in time", not pairs,
            "%d overlapping pairs: %s" % (len(pairs), "; ".join(details)))

    # --- Fencing: a succeeded task's result was written after its last upstream call ended, so no stale run (a
    # process that lost its lease) had its write accepted while the takeover was still running. Needs timestamps
    # on one clock with the mock's: skipped, and said so, when created_at shows the store stamps with a skewed
    # process's clock.
    stale, skewed = [], False
    for t in accepted:
        res = results.get(t["id"]) or {}
        last = res.get("last") or {}
        if res.get("status") != "succeeded" or not last.get("finished_at") or not last.get("created_at"):
            continue
        try:
            if abs(parse_time(last["created_at"]) - t["t"]) > 5:
                skewed = True
                continue
            finished = parse_time(last["finished_at"])
        except ValueError:
            continue
        cs = sorted((c for c in mine if c.get("prompt") == t["prompt"]), key=lambda c: c["end"])
        if cs and finished < cs[-1]["end"] - args.tolerance:
            stale.append("task %d finished at %.2f, its last call (%s) ended at %.2f" % (
                t["k"], finished - args.since, hosts.get(cs[-1].get("peer"), cs[-1].get("peer")),
                cs[-1]["end"] - args.since))
    if skewed:
        print("NOTE fencing check skipped: created_at follows a skewed process clock")
    else:
        r.check("every result was written after its task's last upstream call ended (no stale write)",
                not stale, "; ".join(stale[:4]))
    window = [c for c in calls if c["start"] <= args.until]
    computed_peak = peak(window)
    mock_peak = args.mock_peak if args.mock_peak >= 0 else None
    seen_peak = max(computed_peak, mock_peak or 0)
    r.check("upstream calls in flight never exceeded --max-in-flight %d (call log %d, mock peak %s)"
            % (args.limit, computed_peak, mock_peak), seen_peak <= args.limit,
            "peak %d > %d" % (seen_peak, args.limit))
    attempts = {}
    for c in mine:
        attempts[c["prompt"]] = attempts.get(c["prompt"], 0) + 1
    runs_extra = sum(n - 1 for n in attempts.values() if n > 1)

    # --- Streams
    stream_notes = []
    streams = [s for s in args.streams.split(",") if s] if args.streams else []
    bad_streams = []
    by_id = {t["id"]: t for t in accepted}
    for spec in streams:
        ident, path = spec.split("=", 1)
        t = by_id.get(ident)
        if t is None:
            continue
        done, text, error, connections = stream_outcome(path)
        want = expected_text(t["prompt"])
        if connections > 1:
            stream_notes.append("task %d's stream reconnected %d times" % (t["k"], connections - 1))
        if done is not None and done.get("status") == "succeeded" and done.get("result") == want and text == want:
            continue
        if t.get("may_lose") and (error is not None or (done is not None and done.get("status") == "failed")):
            continue
        bad_streams.append("task %d: done=%s text=%r error=%s" % (
            t["k"], None if done is None else done.get("status"), text[-60:], error))
    if streams:
        r.check("every open stream ended with the final text (%d streams)" % len(streams), not bad_streams,
                "; ".join(bad_streams))

    # --- The results table row
    notes = [n for n in args.note if n] + stream_notes
    if runs_extra:
        notes.append("%d re-run(s)" % runs_extra)
    retried = sum(1 for t in tasks if len(t.get("tried", [])) > 1)
    if retried:
        notes.append("%d submission(s) retried after 503" % retried)
    if refused:
        notes.append("%d not accepted" % len(refused))
    if lost:
        notes.append("lost: " + ", ".join(lost))
    if r.failed:
        notes.append("%d check(s) failed" % r.failed)
    row = {"scenario": args.scenario, "tasks": len(accepted), "succeeded": ok_count, "lost": len(lost),
           "max_overlap": worst, "peak": seen_peak, "limit": args.limit, "notes": "; ".join(notes),
           "failed": r.failed}
    with open(args.rows, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    return 0


def proc_sample(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = 0
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return {"pid": int(pid), "cpu_s": cpu, "rss_kb": rss}
    except (OSError, IndexError, ValueError):
        return {"pid": int(pid), "cpu_s": None, "rss_kb": None}


def cmd_sample(args):
    out = {}
    for pair in args.pairs:
        name, pid = pair.split("=", 1)
        out[name] = proc_sample(pid)
    print(json.dumps(out))
    return 0


def cmd_idle(args):
    r = Report(args.scenario)
    summary = []
    def load(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    before, after = load(args.before), load(args.after)
    baseline = load(args.baseline) if args.baseline and os.path.exists(args.baseline) else {}
    for name in sorted(after):
        a, b = before.get(name), after[name]
        if not a or a.get("pid") != b.get("pid") or a.get("cpu_s") is None or b.get("cpu_s") is None:
            r.check("%s: CPU and RSS measured" % name, False, "process gone or restarted during the window")
            continue
        cpu = b["cpu_s"] - a["cpu_s"]
        summary.append("%s %.2f s CPU, RSS %+.1f MB" % (name, cpu, (b["rss_kb"] - a["rss_kb"]) / 1024.0))
        r.check("%s used %.2f s of CPU in %s s idle (limit %.2f)" % (name, cpu, args.window, args.max_cpu),
                cpu <= args.max_cpu, "%.2f s of CPU while idle: spinning?" % cpu)
        base = baseline.get(name)
        ref = base["rss_kb"] if base and base.get("pid") == b["pid"] else a["rss_kb"]
        growth = (b["rss_kb"] - ref) / 1024.0
        what = "its baseline" if base and base.get("pid") == b["pid"] else "the window's start"
        r.check("%s RSS %.1f MB, %+.1f MB against %s (limit +%d MB)" % (name, b["rss_kb"] / 1024.0, growth, what,
                                                                        args.max_rss_growth_mb),
                growth <= args.max_rss_growth_mb, "grew %.1f MB" % growth)
    print("NOTE " + ", ".join(summary))
    return 0


def cmd_inflight(args):
    """How many upstream calls from one peer were in flight at a time."""
    n = sum(1 for c in read_lines(args.calls)
            if c.get("peer") == args.peer and c["start"] <= args.at <= c["end"])
    print(n)
    return 0


def parse_time(text):
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cmd_skew(args):
    """The offset between each task's created_at (the creating process's clock, or the store's) and the time the
    client submitted it, per front end: informational (a store that stamps with Redis time shows no skew)."""
    tasks = {t["id"]: t for t in read_lines(args.tasks) if t.get("id")}
    offsets = {}
    for res in read_lines(args.results):
        t = tasks.get(res["id"])
        last = res.get("last") or {}
        if t is None or not last.get("created_at"):
            continue
        try:
            offsets.setdefault(t["front"], []).append(parse_time(last["created_at"]) - t["t"])
        except ValueError:
            pass
    parts = []
    for front, values in sorted(offsets.items()):
        parts.append("%s %+.0f s" % (args.hosts.get(front, front) if isinstance(args.hosts, dict) else front,
                                     sum(values) / len(values)))
    print("NOTE created_at minus submission time by front end: " + ", ".join(parts))
    return 0


def cmd_table(args):
    rows = read_lines(args.rows)
    print("| scenario | tasks | succeeded | lost by design | max overlap | peak in flight | notes |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| %s | %d | %d | %d | %d | %d / %d | %s |" % (
            row["scenario"], row["tasks"], row["succeeded"], row["lost"], row["max_overlap"], row["peak"],
            row["limit"], (row["notes"] or "").replace("|", "/")))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="cluster.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("submit")
    s.add_argument("--fronts", required=True)
    s.add_argument("--cacert", required=True)
    s.add_argument("--scenario", required=True)
    s.add_argument("--count", type=int, default=8)
    s.add_argument("--first", type=int, default=1)
    s.add_argument("--spacing", type=float, default=0.25)
    s.add_argument("--latency", default="1.5")
    s.add_argument("--timeout", type=float, default=5.0)
    s.add_argument("--may-lose", action="store_true")
    s.add_argument("--out", required=True)

    w = sub.add_parser("wait")
    w.add_argument("--fronts", required=True)
    w.add_argument("--cacert", required=True)
    w.add_argument("--tasks", required=True)
    w.add_argument("--deadline", type=float, default=45.0)
    w.add_argument("--interval", type=float, default=0.5)
    w.add_argument("--timeout", type=float, default=3.0)
    w.add_argument("--out", required=True)

    c = sub.add_parser("check")
    c.add_argument("--scenario", required=True)
    c.add_argument("--tasks", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--calls", required=True)
    c.add_argument("--since", type=float, required=True)
    c.add_argument("--until", type=float, required=True)
    c.add_argument("--limit", type=int, required=True)
    c.add_argument("--mock-peak", type=int, default=-1)
    c.add_argument("--tolerance", type=float, default=0.02)
    c.add_argument("--min-accepted", type=int, default=1)
    c.add_argument("--streams", default="")
    c.add_argument("--hosts", default="")
    c.add_argument("--note", action="append", default=[])
    c.add_argument("--rows", required=True)

    m = sub.add_parser("sample")
    m.add_argument("pairs", nargs="*")

    i = sub.add_parser("idle")
    i.add_argument("--scenario", required=True)
    i.add_argument("--before", required=True)
    i.add_argument("--after", required=True)
    i.add_argument("--baseline", default="")
    i.add_argument("--window", default="?")
    i.add_argument("--max-cpu", type=float, required=True)
    i.add_argument("--max-rss-growth-mb", type=int, required=True)

    f = sub.add_parser("inflight")
    f.add_argument("--calls", required=True)
    f.add_argument("--peer", required=True)
    f.add_argument("--at", type=float, required=True)

    k = sub.add_parser("skew")
    k.add_argument("--tasks", required=True)
    k.add_argument("--results", required=True)
    k.add_argument("--hosts", default="")

    t = sub.add_parser("table")
    t.add_argument("--rows", required=True)

    le = sub.add_parser("last-event-id")
    le.add_argument("capture")

    se = sub.add_parser("stream-ended")
    se.add_argument("capture")

    args = p.parse_args(argv)
    if getattr(args, "hosts", None) and args.cmd == "skew":
        args.hosts = dict(pair.split("=", 1) for pair in args.hosts.split(","))
    return {"submit": cmd_submit, "wait": cmd_wait, "check": cmd_check, "sample": cmd_sample, "idle": cmd_idle,
            "inflight": cmd_inflight, "skew": cmd_skew, "table": cmd_table,
            "last-event-id": lambda a: print(last_event_id(a.capture)) or 0,
            "stream-ended": lambda a: print("yes" if stream_ended(a.capture) else "no") or 0}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
