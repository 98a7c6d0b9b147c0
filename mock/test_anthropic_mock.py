"""Tests for mock/anthropic_mock.py (stdlib only).

Run from the repository root:
    python3 -m unittest discover -s mock -p 'test_*.py' -v

Each test class starts its own mock process (--port 0 --port-file TMP --latency 0.2) and stops it with
SIGTERM, which must exit with code 0. Prompts are unique per test (uuid), so the mock's per-prompt attempt
counters used by [mock:...xN] markers never collide between tests.
"""

import http.client
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

MOCK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "anthropic_mock.py")
LATENCY = "0.2"
ANTHROPIC_HEADERS = {
    "x-api-key": "test-key",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}
HTML_SNIPPET = '<script>alert("xss")</script>'


def unique(text):
    return "%s %s" % (text, uuid.uuid4().hex[:12])


def expected_reply(prompt):
    return "Mock reply to: " + prompt


def expected_deltas(text):
    """The mock's delta split: one word plus its following whitespace."""
    return re.findall(r"\S+\s*|\s+", text)


def anthropic_body(prompt, stream=False, max_tokens=256, model="claude-test"):
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return body


def openai_body(prompt, stream=False, include_usage=False, model="gpt-test"):
    body = {"model": model, "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def parse_anthropic_sse(text, test):
    """Strict framing check: the body is a sequence of 'event: NAME\\ndata: DATA\\n\\n' blocks.
    Returns [(name, data_str)]."""
    test.assertTrue(text.endswith("\n\n"), "SSE body must end with a blank line: %r" % text[-80:])
    blocks = text.split("\n\n")
    test.assertEqual(blocks[-1], "")
    events = []
    for block in blocks[:-1]:
        lines = block.split("\n")
        test.assertEqual(len(lines), 2, "event block must be one event: and one data: line: %r" % block)
        test.assertTrue(lines[0].startswith("event: "), lines[0])
        test.assertTrue(lines[1].startswith("data: "), lines[1])
        events.append((lines[0][len("event: "):], lines[1][len("data: "):]))
    return events


def parse_openai_sse(text, test):
    """OpenAI framing: 'data: DATA\\n\\n' blocks, no event names. Returns [data_str]."""
    test.assertTrue(text.endswith("\n\n"))
    blocks = text.split("\n\n")
    test.assertEqual(blocks[-1], "")
    out = []
    for block in blocks[:-1]:
        test.assertNotIn("\n", block, "one data line per OpenAI event: %r" % block)
        test.assertTrue(block.startswith("data: "), block)
        out.append(block[len("data: "):])
    return out


def raw_request(path, body_obj, headers, connection_close=True):
    body = json.dumps(body_obj).encode()
    lines = ["POST %s HTTP/1.1" % path, "host: 127.0.0.1"]
    lines += ["%s: %s" % kv for kv in headers.items()]
    lines.append("content-length: %d" % len(body))
    if connection_close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def split_response(data):
    """(status, headers dict, body bytes) of one raw HTTP/1.1 response."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no end of headers in %r" % data[:200])
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def dechunk(body):
    """(payload, complete): complete is True only if the 0-size terminator chunk was seen."""
    out = bytearray()
    pos = 0
    while True:
        nl = body.find(b"\r\n", pos)
        if nl < 0:
            return bytes(out), False
        size = int(body[pos:nl].split(b";")[0], 16)
        if size == 0:
            return bytes(out), body[nl + 2:nl + 4] == b"\r\n"
        start = nl + 2
        if len(body) < start + size + 2:
            out += body[start:start + size]
            return bytes(out), False
        out += body[start:start + size]
        if body[start + size:start + size + 2] != b"\r\n":
            raise AssertionError("bad chunk terminator")
        pos = start + size + 2


def recv_until_eof(sock, timeout=10.0):
    """All bytes until the server closes. A socket timeout (hang guard) raises and fails the test."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        d = sock.recv(65536)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


class MockTestCase(unittest.TestCase):
    """Starts one mock process per test class. extra_args(tmpdir): more command-line arguments."""

    @classmethod
    def extra_args(cls, tmpdir):
        return []

    EXTRA_ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.mkdtemp(prefix="mocktest-")
        cls.port_file = os.path.join(cls.tmpdir, "port")
        cls.stderr_path = os.path.join(cls.tmpdir, "stderr")
        cls.stderr_file = open(cls.stderr_path, "wb")
        cls.proc = subprocess.Popen(
            [sys.executable, MOCK, "--port", "0", "--port-file", cls.port_file, "--latency", LATENCY]
            + cls.EXTRA_ARGS + cls.extra_args(cls.tmpdir),
            stdout=subprocess.DEVNULL, stderr=cls.stderr_file)
        deadline = time.monotonic() + 20
        while not os.path.exists(cls.port_file):
            if cls.proc.poll() is not None:
                cls._cleanup()
                raise RuntimeError("mock exited early with %s" % cls.proc.returncode)
            if time.monotonic() > deadline:
                cls.proc.kill()
                cls.proc.wait()
                cls._cleanup()
                raise RuntimeError("mock did not write its port file")
            time.sleep(0.02)
        with open(cls.port_file) as f:
            cls.port = int(f.read().strip())

    @classmethod
    def _cleanup(cls):
        cls.stderr_file.close()
        shutil.rmtree(cls.tmpdir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        try:
            rc = cls.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
            rc = "timeout (killed)"
        with open(cls.stderr_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        cls._cleanup()
        if rc != 0:
            raise AssertionError("mock exit code after SIGTERM: %r; stderr:\n%s" % (rc, err))

    # ---- helpers

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """(status, lower-case headers, body bytes); body may be bytes or a JSON-able object."""
        own = conn is None
        c = conn or self.conn()
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body).encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def anthropic(self, prompt, stream=False, headers=None, conn=None, **kw):
        return self.request("POST", "/v1/messages", anthropic_body(prompt, stream, **kw),
                            ANTHROPIC_HEADERS if headers is None else headers, conn)

    def openai(self, prompt, stream=False, include_usage=False, auth="Bearer test-key"):
        headers = {"content-type": "application/json"}
        if auth is not None:
            headers["authorization"] = auth
        return self.request("POST", "/v1/chat/completions", openai_body(prompt, stream, include_usage), headers)

    def assert_anthropic_error(self, status, headers, data, want_status, want_type):
        self.assertEqual(status, want_status, data)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"))
        obj = json.loads(data)
        self.assertEqual(obj["type"], "error")
        self.assertEqual(obj["error"]["type"], want_type)
        self.assertIsInstance(obj["error"]["message"], str)
        self.assertTrue(obj["error"]["message"])
        self.assertTrue(headers.get("request-id", "").startswith("req_"), headers)
        self.assertEqual(obj["request_id"], headers["request-id"])
        return obj

    def stream_events(self, prompt, **kw):
        status, headers, data = self.anthropic(prompt, stream=True, **kw)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"), headers)
        self.assertTrue(headers.get("request-id", "").startswith("req_"))
        return parse_anthropic_sse(data.decode("utf-8"), self)


class CommandLineTests(unittest.TestCase):
    def test_help(self):
        r = subprocess.run([sys.executable, MOCK, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage:", r.stdout)
        for opt in ("--port", "--port-file", "--latency", "--api-key", "--idle-timeout"):
            self.assertIn(opt, r.stdout)


class AnthropicTests(MockTestCase):
    def test_listening_message_and_port_file(self):
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode()
        self.assertIn("mock LLM listening on http://127.0.0.1:%d\n" % self.port, err)
        self.assertGreater(self.port, 0)

    def test_nonstreaming_reply(self):
        prompt = unique("hello non-streaming world")
        status, headers, data = self.anthropic(prompt, model="claude-x")
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        self.assertTrue(headers.get("request-id", "").startswith("req_"))
        self.assertIn("anthropic-ratelimit-requests-remaining", headers)
        msg = json.loads(data)
        reply = expected_reply(prompt)
        self.assertEqual(msg["type"], "message")
        self.assertEqual(msg["role"], "assistant")
        self.assertTrue(msg["id"].startswith("msg_"))
        self.assertEqual(msg["model"], "claude-x")
        self.assertEqual(msg["content"], [{"type": "text", "text": reply}])
        self.assertEqual(msg["stop_reason"], "end_turn")
        self.assertIsNone(msg["stop_sequence"])
        usage = msg["usage"]
        self.assertEqual(usage["input_tokens"], len(prompt.split()))
        self.assertEqual(usage["output_tokens"], len(expected_deltas(reply)))
        self.assertEqual(usage["cache_creation_input_tokens"], 0)
        self.assertEqual(usage["cache_read_input_tokens"], 0)

    def test_streaming_event_sequence_and_text(self):
        prompt = unique("stream me please")
        status, headers, data = self.anthropic(prompt)
        self.assertEqual(status, 200)
        nonstream_text = json.loads(data)["content"][0]["text"]
        events = self.stream_events(prompt, model="claude-s")
        n = len(expected_deltas(nonstream_text))
        names = [name for name, _ in events]
        self.assertEqual(names, ["message_start", "ping", "content_block_start"] + ["content_block_delta"] * n
                         + ["content_block_stop", "message_delta", "message_stop"])
        datas = [json.loads(d) for _, d in events]
        for name, obj in zip(names, datas):
            self.assertEqual(obj["type"], name)
        start = datas[0]["message"]
        self.assertTrue(start["id"].startswith("msg_"))
        self.assertEqual((start["role"], start["content"], start["model"], start["stop_reason"]),
                         ("assistant", [], "claude-s", None))
        self.assertEqual(start["usage"]["input_tokens"], len(prompt.split()))
        self.assertEqual(datas[2], {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}})
        deltas = [d for d in datas if d["type"] == "content_block_delta"]
        for d in deltas:
            self.assertEqual(d["index"], 0)
            self.assertEqual(d["delta"]["type"], "text_delta")
        self.assertEqual("".join(d["delta"]["text"] for d in deltas), nonstream_text)
        self.assertEqual(nonstream_text, expected_reply(prompt))
        self.assertEqual(datas[-3], {"type": "content_block_stop", "index": 0})
        self.assertEqual(datas[-2]["delta"], {"stop_reason": "end_turn", "stop_sequence": None})
        self.assertEqual(datas[-2]["usage"]["output_tokens"], n)

    def test_max_tokens_marker(self):
        prompt = unique("cut me short [mock:max-tokens]")
        events = self.stream_events(prompt)
        md = [json.loads(d) for name, d in events if name == "message_delta"]
        self.assertEqual(len(md), 1)
        self.assertEqual(md[0]["delta"]["stop_reason"], "max_tokens")
        self.assertEqual(events[-1][0], "message_stop")
        status, _, data = self.anthropic(prompt)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data)["stop_reason"], "max_tokens")

    def test_missing_api_key_is_401(self):
        headers = dict(ANTHROPIC_HEADERS)
        del headers["x-api-key"]
        status, h, data = self.anthropic(unique("no key"), headers=headers)
        self.assert_anthropic_error(status, h, data, 401, "authentication_error")

    def test_missing_anthropic_version_is_400(self):
        headers = dict(ANTHROPIC_HEADERS)
        del headers["anthropic-version"]
        status, h, data = self.anthropic(unique("no version"), headers=headers)
        obj = self.assert_anthropic_error(status, h, data, 400, "invalid_request_error")
        self.assertIn("anthropic-version", obj["error"]["message"])

    def test_invalid_json_is_400(self):
        for bad in (b'{"model": "m", "max_tokens": ', b"not json at all", b"[" * 50000):
            status, h, data = self.request("POST", "/v1/messages", bad, ANTHROPIC_HEADERS)
            self.assert_anthropic_error(status, h, data, 400, "invalid_request_error")
        # valid JSON but missing required fields
        status, h, data = self.request("POST", "/v1/messages", {"model": "m", "messages": []}, ANTHROPIC_HEADERS)
        self.assert_anthropic_error(status, h, data, 400, "invalid_request_error")

    def test_keep_alive_reuses_connection(self):
        c = self.conn()
        try:
            prompts = [unique("keepalive %d" % i) for i in range(3)]
            status, headers, data = self.anthropic(prompts[0], conn=c)
            sock = c.sock
            self.assertIsNotNone(sock)
            self.assertEqual(headers.get("connection"), "keep-alive")
            results = [(status, data)]
            results.append(self.anthropic(prompts[1], stream=True, conn=c)[::2])
            results.append(self.anthropic(prompts[2], conn=c)[::2])
            # an error response keeps the connection too
            results.append(self.request("GET", "/no/such/path", None, {}, c)[::2])
            self.assertIs(c.sock, sock, "the client had to reconnect: keep-alive not honoured")
            self.assertEqual([s for s, _ in results], [200, 200, 200, 404])
            self.assertEqual(json.loads(results[0][1])["content"][0]["text"], expected_reply(prompts[0]))
            self.assertIn(b"event: message_stop", results[1][1])
            self.assertEqual(json.loads(results[2][1])["content"][0]["text"], expected_reply(prompts[2]))
        finally:
            c.close()

    def test_chunked_request_body_pipelined(self):
        prompts = [unique("chunked body one"), unique("chunked body two")]
        head = "POST /v1/messages HTTP/1.1\r\nhost: x\r\n" + "".join(
            "%s: %s\r\n" % kv for kv in ANTHROPIC_HEADERS.items())
        data = b""
        for i, p in enumerate(prompts):
            body = json.dumps(anthropic_body(p)).encode()
            parts = [body[:7], body[7:20], body[20:]]
            chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(x), x) for x in parts) + b"0\r\n\r\n"
            extra = "connection: close\r\n" if i == 1 else ""
            data += (head + extra + "transfer-encoding: chunked\r\n\r\n").encode() + chunked
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(data)  # both requests at once (pipelined)
            raw = recv_until_eof(s)
        replies = []
        rest = raw
        for _ in range(2):
            status, headers, body = split_response(rest)
            self.assertEqual(status, 200, rest[:300])
            n = int(headers["content-length"])
            replies.append(json.loads(body[:n])["content"][0]["text"])
            rest = body[n:]
        self.assertEqual(rest, b"")
        self.assertEqual(replies, [expected_reply(p) for p in prompts])

    def test_head_and_unknown_paths_are_404_json(self):
        c = self.conn()
        try:
            status, headers, data = self.request("GET", "/v1/nothing-here", None, {}, c)
            self.assertEqual(status, 404)
            obj = json.loads(data)
            self.assertEqual(obj["type"], "error")
            self.assertEqual(obj["error"]["type"], "not_found_error")
            self.assertEqual(obj["request_id"], headers["request-id"])
            status, headers, data = self.request("HEAD", "/v1/nothing-here", None, {}, c)
            self.assertEqual(status, 404)
            self.assertEqual(data, b"")
            self.assertTrue(headers["content-type"].startswith("application/json"))
            # if the HEAD response had carried a body, this next response on the same connection would be garbage
            status, _, data = self.request("GET", "/mock/health", None, {}, c)
            self.assertEqual((status, data), (200, b"ok"))
        finally:
            c.close()
        # raw check: a HEAD response has no body bytes at all
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"HEAD /unknown HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            raw = recv_until_eof(s)
        status, headers, body = split_response(raw)
        self.assertEqual(status, 404)
        self.assertGreater(int(headers["content-length"]), 0)
        self.assertEqual(body, b"")

    def test_health(self):
        status, headers, data = self.request("GET", "/mock/health")
        self.assertEqual((status, data), (200, b"ok"))
        self.assertTrue(headers["content-type"].startswith("text/plain"))


class FaultTests(MockTestCase):
    def test_529x2_then_success(self):
        prompt = unique("overloaded twice [mock:529x2]")
        for _ in range(2):
            status, h, data = self.anthropic(prompt)
            self.assert_anthropic_error(status, h, data, 529, "overloaded_error")
            self.assertIn("retry-after", h)
        status, h, data = self.anthropic(prompt)
        self.assertEqual(status, 200, data)
        self.assertEqual(json.loads(data)["content"][0]["text"], expected_reply(prompt))

    def test_429x1_has_retry_after(self):
        prompt = unique("rate limited [mock:429x1]")
        status, h, data = self.anthropic(prompt)
        self.assert_anthropic_error(status, h, data, 429, "rate_limit_error")
        self.assertIn("retry-after", h)
        self.assertGreater(float(h["retry-after"]), 0)
        status, h, data = self.anthropic(prompt)
        self.assertEqual(status, 200, data)
        prompt2 = unique("rate limited [mock:429x1][mock:retry-after=7]")
        status, h, data = self.anthropic(prompt2)
        self.assertEqual((status, h.get("retry-after")), (429, "7"))

    def test_500_is_api_error_every_time(self):
        prompt = unique("broken [mock:500]")
        for _ in range(2):
            status, h, data = self.anthropic(prompt)
            self.assert_anthropic_error(status, h, data, 500, "api_error")
        status, h, data = self.anthropic(prompt, stream=True)
        self.assert_anthropic_error(status, h, data, 500, "api_error")

    def test_disconnect_mid_stream(self):
        prompt = unique("drop the line [mock:disconnect]")
        n = len(expected_deltas(expected_reply(prompt)))
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            # no "connection: close": the mock must close by itself
            s.sendall(raw_request("/v1/messages", anthropic_body(prompt, stream=True), ANTHROPIC_HEADERS,
                                  connection_close=False))
            raw = recv_until_eof(s)  # returns only if the server closed the connection
        status, headers, body = split_response(raw)
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        payload, complete = dechunk(body)
        self.assertFalse(complete, "the chunked body must not be terminated")
        events = parse_anthropic_sse(payload.decode(), self)
        names = [e for e, _ in events]
        self.assertEqual(names[:3], ["message_start", "ping", "content_block_start"])
        self.assertNotIn("message_stop", names)
        self.assertNotIn("message_delta", names)
        self.assertEqual(names.count("content_block_delta"), n // 2)

    def test_malformed_event(self):
        prompt = unique("garble it [mock:malformed]")
        events = self.stream_events(prompt)
        bad = []
        good = []
        for name, d in events:
            try:
                good.append((name, json.loads(d)))
            except ValueError:
                bad.append(d)
        self.assertEqual(len(bad), 1, bad)
        text = "".join(o["delta"]["text"] for name, o in good if name == "content_block_delta")
        self.assertEqual(text, expected_reply(prompt))
        self.assertEqual(events[-1][0], "message_stop")

    def test_error_event_mid_stream(self):
        prompt = unique("fail midway [mock:error-event]")
        events = self.stream_events(prompt)  # http.client read the complete chunked body
        names = [e for e, _ in events]
        self.assertEqual(names[-1], "error")
        self.assertNotIn("message_stop", names)
        self.assertIn("content_block_delta", names)
        err = json.loads(events[-1][1])
        self.assertEqual(err["type"], "error")
        self.assertEqual(err["error"]["type"], "overloaded_error")

    def test_slow_headers(self):
        prompt = unique("take your time [mock:slow-headers=1]")
        c = self.conn()
        try:
            c.request("POST", "/v1/messages", body=json.dumps(anthropic_body(prompt)), headers=ANTHROPIC_HEADERS)
            t0 = time.monotonic()
            r = c.getresponse()  # returns once the status line and headers are in
            elapsed = time.monotonic() - t0
            data = r.read()
        finally:
            c.close()
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(data)["content"][0]["text"], expected_reply(prompt))

    def test_html_marker(self):
        prompt = unique("be nasty [mock:html]")
        status, _, data = self.anthropic(prompt)
        self.assertEqual(status, 200)
        text = json.loads(data)["content"][0]["text"]
        self.assertIn(HTML_SNIPPET, text)
        self.assertTrue(text.startswith(expected_reply(prompt)))
        events = self.stream_events(prompt)
        streamed = "".join(json.loads(d)["delta"]["text"] for e, d in events if e == "content_block_delta")
        self.assertEqual(streamed, text)


class MarkdownTests(MockTestCase):
    """The demo's Markdown answer: on request with [mock:markdown]; with --markdown for prompts without markers."""

    EXTRA_ARGS = ["--markdown"]

    def streamed_text(self, prompt):
        events = self.stream_events(prompt)
        return "".join(json.loads(d)["delta"]["text"] for e, d in events if e == "content_block_delta")

    def test_markdown_marker_streams_the_markdown_answer_over_the_latency(self):
        prompt = unique("show me [mock:markdown] [mock:latency=0.3]")
        started = time.monotonic()
        text = self.streamed_text(prompt)
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        self.assertTrue(text.startswith("## A mock answer, in Markdown"), text[:80])
        for part in ("```python\n", "| Part |", "1. Put your key", "- [x] ", "**mock LLM**"):
            self.assertIn(part, text)

    def test_with_the_flag_an_ordinary_prompt_gets_markdown_slowly(self):
        prompt = unique("Why is the sky blue?")
        started = time.monotonic()
        status, _, data = self.anthropic(prompt)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - started, 3.9)
        self.assertTrue(json.loads(data)["content"][0]["text"].startswith("## A mock answer"))

    def test_with_the_flag_a_prompt_with_a_marker_keeps_the_exact_reply(self):
        prompt = unique("exact please [mock:latency=0]")
        status, _, data = self.anthropic(prompt)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(data)["content"][0]["text"], expected_reply(prompt))


class OpenAITests(MockTestCase):
    def test_openai_nonstreaming(self):
        prompt = unique("openai style")
        status, headers, data = self.openai(prompt)
        self.assertEqual(status, 200, data)
        obj = json.loads(data)
        reply = expected_reply(prompt)
        self.assertEqual(obj["object"], "chat.completion")
        self.assertEqual(obj["model"], "gpt-test")
        self.assertEqual(obj["choices"][0]["message"], {"role": "assistant", "content": reply})
        self.assertEqual(obj["choices"][0]["finish_reason"], "stop")
        self.assertEqual(obj["usage"]["prompt_tokens"], len(prompt.split()))
        self.assertEqual(obj["usage"]["completion_tokens"], len(expected_deltas(reply)))
        self.assertEqual(obj["usage"]["total_tokens"],
                         obj["usage"]["prompt_tokens"] + obj["usage"]["completion_tokens"])

    def test_openai_streaming_ends_with_done(self):
        prompt = unique("openai stream")
        status, headers, data = self.openai(prompt, stream=True, include_usage=True)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        text = data.decode()
        self.assertNotIn("event:", text)
        lines = parse_openai_sse(text, self)
        self.assertEqual(lines[-1], "[DONE]")
        self.assertEqual(lines.count("[DONE]"), 1)
        chunks = [json.loads(x) for x in lines[:-1]]
        for ch in chunks:
            self.assertEqual(ch["object"], "chat.completion.chunk")
        self.assertEqual(chunks[0]["choices"][0]["delta"].get("role"), "assistant")
        content = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"])
        self.assertEqual(content, expected_reply(prompt))
        finishes = [ch["choices"][0]["finish_reason"] for ch in chunks if ch["choices"]]
        self.assertEqual(finishes[-1], "stop")
        self.assertTrue(all(f is None for f in finishes[:-1]))
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], len(expected_deltas(expected_reply(prompt))))

    def test_openai_requires_bearer(self):
        for auth in (None, "Basic abc", "Bearer "):
            status, _, data = self.openai(unique("no bearer"), auth=auth)
            self.assertEqual(status, 401, (auth, data))
            self.assertIn("message", json.loads(data)["error"])


class StatsTests(MockTestCase):
    def stats(self):
        status, _, data = self.request("GET", "/mock/stats")
        self.assertEqual(status, 200)
        return json.loads(data)

    def test_stats_count_and_reset_zeroes(self):
        status, _, _ = self.request("POST", "/mock/reset")
        self.assertEqual(status, 200)
        s = self.stats()
        self.assertEqual(s["requests_total"], 0)
        p1 = unique("counted")
        p2 = unique("counted fail once [mock:500x1]")
        self.assertEqual(self.anthropic(p1)[0], 200)
        self.assertEqual(self.anthropic(p1, stream=True)[0], 200)
        self.assertEqual(self.anthropic(p2)[0], 500)
        self.assertEqual(self.openai(p1)[0], 200)
        headers = dict(ANTHROPIC_HEADERS)
        del headers["x-api-key"]
        self.assertEqual(self.anthropic(p2, headers=headers)[0], 401)
        s = self.stats()
        self.assertEqual(s["requests_total"], 5)
        self.assertEqual(s["requests_by_prompt"], {p1: 3, p2: 2})
        self.assertEqual(s["streams_completed"], 1)
        self.assertEqual(s["streams_active"], 0)
        self.assertEqual(s["responses_by_status"].get("500"), 1)
        self.assertEqual(s["responses_by_status"].get("401"), 1)
        self.assertGreaterEqual(s["connections_total"], 6)
        # x1 is used up: the second validated attempt succeeds
        self.assertEqual(self.anthropic(p2)[0], 200)

        status, _, data = self.request("POST", "/mock/reset")
        self.assertEqual((status, json.loads(data)), (200, {"ok": True}))
        s = self.stats()
        self.assertEqual(s["requests_total"], 0)
        self.assertEqual(s["requests_by_prompt"], {})
        self.assertEqual(s["streams_completed"], 0)
        # reset also zeroes the attempt counters: [mock:500x1] fires again
        self.assertEqual(self.anthropic(p2)[0], 500)
        self.assertEqual(self.stats()["requests_total"], 1)


class CallLogTests(MockTestCase):
    """--call-log FILE: one JSON line per LLM call, written when the call ends."""

    @classmethod
    def extra_args(cls, tmpdir):
        cls.call_log = os.path.join(tmpdir, "calls.jsonl")
        return ["--call-log", cls.call_log]

    def calls_for(self, prompt, want, timeout=5.0):
        """The call-log lines with this prompt, once there are `want` of them (bounded wait)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = []
            if os.path.exists(self.call_log):
                with open(self.call_log, encoding="utf-8") as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            mine = [c for c in lines if c["prompt"] == prompt]
            if len(mine) >= want or time.monotonic() > deadline:
                return mine
            time.sleep(0.05)

    def test_completed_stream_and_nonstream_calls(self):
        p = unique("logged [mock:latency=0.3]")
        before = time.time()
        self.assertEqual(self.anthropic(p, stream=True)[0], 200)
        self.assertEqual(self.openai(p)[0], 200)
        after = time.time()
        calls = self.calls_for(p, 2)
        self.assertEqual(len(calls), 2, calls)
        for call in calls:
            self.assertEqual(set(call), {"prompt", "peer", "start", "end", "outcome", "status"})
            self.assertEqual(call["peer"], "127.0.0.1")
            self.assertEqual(call["outcome"], "completed")
            self.assertEqual(call["status"], 200)
            self.assertLessEqual(before, call["start"])
            self.assertLessEqual(call["end"], after + 0.05)
            # The latency marker: each call lasted about 0.3 s.
            self.assertGreaterEqual(call["end"] - call["start"], 0.25)
        # Written at the end of each call: the second started after the first ended.
        self.assertLessEqual(calls[0]["end"], calls[1]["start"] + 0.01)

    def test_error_and_aborted_calls(self):
        p = unique("logged fail once [mock:500x1]")
        self.assertEqual(self.anthropic(p)[0], 500)
        self.assertEqual(self.anthropic(p)[0], 200)
        calls = self.calls_for(p, 2)
        self.assertEqual([(c["outcome"], c["status"]) for c in calls], [("error", 500), ("completed", 200)])

        q = unique("logged aborted [mock:latency=3]")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            s.sendall(raw_request("/v1/messages", anthropic_body(q, stream=True), ANTHROPIC_HEADERS))
            s.settimeout(5)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
            # While it streams, /mock/stats counts it by client address.
            status, _, data = self.request("GET", "/mock/stats")
            self.assertEqual(json.loads(data)["streams_active_by_peer"].get("127.0.0.1"), 1)
        finally:
            s.close()
        calls = self.calls_for(q, 1)
        self.assertEqual(len(calls), 1, calls)
        status, _, data = self.request("GET", "/mock/stats")
        self.assertEqual(json.loads(data)["streams_active_by_peer"], {})
        self.assertEqual((calls[0]["outcome"], calls[0]["status"]), ("aborted", 200))
        self.assertLess(calls[0]["end"] - calls[0]["start"], 2.5)

        r = unique("logged disconnect [mock:disconnect]")
        with self.assertRaises(http.client.IncompleteRead):
            self.anthropic(r, stream=True)
        calls = self.calls_for(r, 1)
        self.assertEqual(calls[0]["outcome"], "disconnected")

        e = unique("logged error event [mock:error-event] [mock:long=10]")
        self.assertEqual(self.anthropic(e, stream=True)[0], 200)
        calls = self.calls_for(e, 1)
        self.assertEqual((calls[0]["outcome"], calls[0]["status"]), ("error", 200))


class ConcurrencyTests(MockTestCase):
    N = 1000

    def test_1000_concurrent_streams(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 3 * self.N
        if soft != resource.RLIM_INFINITY and soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need if hard == resource.RLIM_INFINITY
                                                        else min(need, hard), hard))
        self.assertEqual(self.request("POST", "/mock/reset")[0], 200)
        # The mock's own injected latency (3 s per stream) keeps every stream open while all are started.
        prompts = [unique("concurrent %d [mock:latency=3]" % i) for i in range(self.N)]
        socks = []
        sel = selectors.DefaultSelector()
        try:
            for p in prompts:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                socks.append(s)
                s.sendall(raw_request("/v1/messages", anthropic_body(p, stream=True), ANTHROPIC_HEADERS))
            bufs = {}
            for i, s in enumerate(socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
                bufs[i] = bytearray()
            open_count = len(socks)
            hang_guard = time.monotonic() + 60
            while open_count:
                self.assertLess(time.monotonic(), hang_guard, "responses never completed")
                for key, _ in sel.select(timeout=1):
                    try:
                        d = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    if d:
                        bufs[key.data] += d
                    else:
                        sel.unregister(key.fileobj)
                        open_count -= 1
        finally:
            sel.close()
            for s in socks:
                s.close()
        for i, p in enumerate(prompts):
            status, headers, body = split_response(bytes(bufs[i]))
            self.assertEqual(status, 200)
            payload, complete = dechunk(body)
            self.assertTrue(complete, i)
            events = parse_anthropic_sse(payload.decode(), self)
            self.assertEqual(events[-1][0], "message_stop")
            text = "".join(json.loads(d)["delta"]["text"] for e, d in events if e == "content_block_delta")
            self.assertEqual(text, expected_reply(p))
        status, _, data = self.request("GET", "/mock/stats")
        stats = json.loads(data)
        self.assertEqual(stats["streams_completed"], self.N)
        self.assertEqual(stats["streams_aborted"], 0)
        self.assertEqual(stats["max_concurrent_streams"], self.N)


if __name__ == "__main__":
    unittest.main()
