"""Self-test of Tests/Cluster/cluster.py's analysers on made-up data: each check must be able to fail.

    python3 -m unittest discover -s Tests/Cluster -p 'test_*.py'

Run by Tests/Cluster/run.sh before it builds the cluster (one PASS/FAIL line).
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402

T0 = 1_000_000.0


def iso(t):
    from datetime import datetime, timezone
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AnalyserTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cluster-selftest-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, rows):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        return path

    def run_check(self, tasks, results, calls, streams="", limit=6, mock_peak=-1):
        args = ["check", "--scenario", "t", "--tasks", self.write("tasks", tasks),
                "--results", self.write("results", results), "--calls", self.write("calls", calls),
                "--since", str(T0 - 1), "--until", str(T0 + 100), "--limit", str(limit),
                "--mock-peak", str(mock_peak), "--rows", os.path.join(self.dir, "rows"), "--streams", streams]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cluster.main(args)
        got = {}
        for line in out.getvalue().splitlines():
            if line[:4] in ("PASS", "FAIL"):
                name = line[5:].split(": ", 2)[1]  # "cluster t: NAME[: details]"
                got[name.split(" (")[0]] = line[:4]
        return got

    def task(self, k, prompt=None, may_lose=False):
        prompt = prompt or "cluster t task %d [mock:latency=1.5]" % k
        return {"k": k, "prompt": prompt, "front": "10.0.0.1", "http": 202, "id": "id%d" % k, "t": T0,
                "may_lose": may_lose, "tried": [prompt]}

    def result(self, k, status="succeeded", text=None, finished=T0 + 2, error=None):
        prompt = "cluster t task %d [mock:latency=1.5]" % k
        last = {"status": status, "created_at": iso(T0), "finished_at": iso(finished)}
        if status == "succeeded":
            last["result"] = text if text is not None else "Mock reply to: " + prompt
        if error:
            last["error"] = error
        return {"k": k, "id": "id%d" % k, "prompt": prompt, "status": status, "last": last, "seen": {"200": 1}}

    def call(self, k, start, end, peer="10.0.0.31"):
        return {"prompt": "cluster t task %d [mock:latency=1.5]" % k, "peer": peer, "start": T0 + start,
                "end": T0 + end, "outcome": "completed", "status": 200}

    def test_all_good(self):
        got = self.run_check([self.task(1), self.task(2)], [self.result(1), self.result(2, finished=T0 + 5.6)],
                             [self.call(1, 0, 1.5), self.call(2, 0.2, 1.7), self.call(2, 4, 5.5)])
        self.assertNotIn("FAIL", got.values(), got)

    def test_overlap_peak_stale_and_wrong_text_fail(self):
        calls = [self.call(1, 0, 1.5), self.call(1, 1.0, 2.5, peer="10.0.0.32")]
        calls += [self.call(k, 0.1, 1.6) for k in range(2, 8)]
        got = self.run_check([self.task(k) for k in range(1, 8)],
                             [self.result(1, finished=T0 + 1.6)] + [self.result(2, text="wrong")] +
                             [self.result(k) for k in range(3, 8)], calls)
        self.assertEqual(got["no two upstream calls of one task overlap in time"], "FAIL")
        self.assertEqual(got["upstream calls in flight never exceeded --max-in-flight 6"], "FAIL")
        self.assertEqual(got["every accepted task succeeded with the mock's text"], "FAIL")
        self.assertEqual(got["every result was written after its task's last upstream call ended"], "FAIL")

    def test_mock_peak_alone_fails_the_limit(self):
        got = self.run_check([self.task(1)], [self.result(1)], [self.call(1, 0, 1.5)], mock_peak=7)
        self.assertEqual(got["upstream calls in flight never exceeded --max-in-flight 6"], "FAIL")

    def test_cancelled_timeout_and_losses(self):
        got = self.run_check([self.task(1), self.task(2)], [self.result(1, status="cancelled"),
                                                            {**self.result(2), "status": "timeout"}], [])
        self.assertEqual(got["no task was cancelled"], "FAIL")
        self.assertEqual(got["every accepted task succeeded with the mock's text"], "FAIL")
        # Allowed losses: 404 or a failure with a reason; a failure without one is not.
        ok = self.run_check([self.task(1, may_lose=True), self.task(2, may_lose=True)],
                            [{**self.result(1), "status": "not_found", "last": None},
                             self.result(2, status="failed", error={"type": "lost", "message": "gone"})], [])
        self.assertNotIn("FAIL", ok.values(), ok)
        bad = self.run_check([self.task(1, may_lose=True)], [self.result(1, status="failed", error={})], [])
        self.assertIn("FAIL", bad.values(), bad)

    def test_streams(self):
        prompt = "cluster t task 1 [mock:latency=1.5]"
        final = {"status": "succeeded", "result": "Mock reply to: " + prompt}
        good = os.path.join(self.dir, "good")
        with open(good, "w") as f:
            f.write(": cluster-suite connection 1\n\nid: 5\nevent: delta\ndata: {\"text\":\"Mock \"}\n\n"
                    "id: 0\nevent: reset\ndata: reset\n\n"
                    "id: 9\nevent: delta\ndata: %s\n\nid: 9\nevent: done\ndata: %s\n\n"
                    % (json.dumps({"text": final["result"]}), json.dumps(final)))
        bad = os.path.join(self.dir, "bad")
        with open(bad, "w") as f:
            f.write(": cluster-suite connection 1\n\nid: 5\nevent: delta\ndata: {\"text\":\"Mock \"}\n\n")
        name = "every open stream ended with the final text"
        got = self.run_check([self.task(1)], [self.result(1)], [self.call(1, 0, 1.5)], streams="id1=" + good)
        self.assertEqual(got[name], "PASS", got)
        got = self.run_check([self.task(1)], [self.result(1)], [self.call(1, 0, 1.5)], streams="id1=" + bad)
        self.assertEqual(got[name], "FAIL", got)

    def test_a_cut_event_does_not_count_and_the_resume_id_is_the_last_whole_event(self):
        # As in a browser: the second connection was cut inside the event for bytes 28..33 (its id line had
        # arrived), so the resume asks from 1-28 and gets those bytes again, once.
        capture = os.path.join(self.dir, "cut")
        with open(capture, "w") as f:
            f.write(": cluster-suite connection 1 via a\n"
                    "retry: 2000\n\nid: 1-28\nevent: delta\ndata: {\"text\":\"Mock reply to: cluster mixed\"}\n\n"
                    "id: 1-33\nevent: delta\ndata: {\"text\":\" task\"}\n")
        self.assertEqual(cluster.last_event_id(capture), "1-28")
        self.assertFalse(cluster.stream_ended(capture))
        with open(capture, "a") as f:
            f.write(": cluster-suite connection 2 via b\n"
                    "retry: 2000\n\nid: 1-54\nevent: delta\ndata: {\"text\":\" task 2 [mock:latency=1.5]\"}\n\n"
                    "id: 1-54\nevent: done\ndata: {\"status\":\"succeeded\"}\n\n")
        done, text, error, connections = cluster.stream_outcome(capture)
        self.assertEqual(text, "Mock reply to: cluster mixed task 2 [mock:latency=1.5]")
        self.assertEqual(done, {"status": "succeeded"})
        self.assertIsNone(error)
        self.assertEqual(connections, 2)
        self.assertTrue(cluster.stream_ended(capture))
        self.assertEqual(cluster.last_event_id(capture), "1-54")

    def test_no_resume_id_before_a_whole_event(self):
        capture = os.path.join(self.dir, "early")
        with open(capture, "w") as f:
            f.write(": cluster-suite connection 1 via a\nretry: 2000\n\nid: 1-5\nevent: delta\ndata: {\"te")
        self.assertEqual(cluster.last_event_id(capture), "")
        self.assertEqual(cluster.stream_outcome(capture)[1], "")


if __name__ == "__main__":
    unittest.main()
