#!/usr/bin/env python3
"""Mock LLM provider for Longhaul: Anthropic Messages API + OpenAI-compatible chat completions.

Standard library only (asyncio). One coroutine per connection, no threads.

Command line
    python3 mock/anthropic_mock.py [--host 127.0.0.1] [--port 0] [--port-file PATH]
                                   [--latency SECONDS] [--api-key KEY]
                                   [--idle-timeout SECONDS] [--delta-log FILE] [--call-log FILE]
                                   [--markdown] [--verbose]

    --port 0 picks a free port. Once listening, the port number is written to --port-file
    (tmp file + rename) and "mock LLM listening on http://HOST:PORT" is printed to stderr.
    --latency (default 1.0) is the total time over which a streamed reply's deltas are spread
    (delta i of N is sent at i*latency/N); a non-streaming reply is sent after the latency.
    SIGTERM / SIGINT exit with code 0.
    --delta-log FILE (off by default; for benchmarks) appends one JSON line {"p": PROMPT, "i": INDEX,
    "t": time.time()} just before each streamed delta is written to the socket. It changes nothing on the wire.
    --markdown (off by default; scripts/run sets it for the offline demo) answers a prompt that has no [mock:...]
    marker with MARKDOWN_REPLY (a heading, lists, a code block, a table, paragraphs) streamed over at least
    MARKDOWN_LATENCY seconds. Without it every reply is the "Mock reply to: PROMPT" below, which tests rely on.
    --call-log FILE (off by default; for the cluster suite) appends one JSON line per upstream call to
    /v1/messages or /v1/chat/completions (POST), written when the call ends (line-buffered, one write per line):
        {"prompt": PROMPT or null (no readable body), "peer": the client's IP address,
         "start": time.time() when the request (headers and body) had been read,
         "end": time.time() when the call ended,
         "outcome": "completed" | "aborted" | "disconnected" | "error", "status": HTTP status or null}
    outcome: "completed" the whole reply was sent; "aborted" the client closed (or half-closed) first, or the
    mock stopped, before the reply was complete; "disconnected" ended by [mock:disconnect]; "error" an error
    response (status >= 400, e.g. a [mock:STATUS] marker, bad auth or body) or a stream that ended with an error
    event ([mock:error-event], status 200). status is null when no status line was sent (a client that left during
    [mock:slow-headers]). A task id is never sent to the provider, so a test maps tasks to calls through unique
    prompts; the attempt is the order of the calls with the same prompt (order by "start").

Endpoints
    POST /v1/messages          Anthropic Messages API. Needs x-api-key (any non-empty value, or exactly
                               --api-key) -> else 401 authentication_error; anthropic-version -> else 400.
    POST /v1/chat/completions  OpenAI-compatible. Needs "Authorization: Bearer KEY" (same rule).
    GET  /mock/stats           JSON counters (see STATS below).
    POST /mock/reset           Zero the counters and the per-prompt attempt counts.
    GET  /mock/health          200 "ok".

    PROMPT = text of the last user message (text blocks joined with "\\n").
    Reply  = "Mock reply to: " + PROMPT [+ html addition] [+ " word1 word2 ... wordN"]; MARKDOWN_REPLY instead
             for [mock:markdown], or with --markdown when PROMPT has no marker.
    Deltas = one word plus its following whitespace each (their concatenation is the reply).
    input_tokens / prompt_tokens = len(PROMPT.split()); output_tokens / completion_tokens = number of deltas.
    The request's max_tokens is validated but does not truncate the reply.

Fault markers (anywhere in PROMPT, several may combine; any marker may take an "xN" suffix meaning
"only the first N requests with this exact prompt"; without it every request is affected):
    [mock:STATUS] [mock:STATUSxN]  e.g. [mock:529x2] [mock:500x1] [mock:429] [mock:401]: error response.
                                   400 invalid_request_error, 401 authentication_error, 402 billing_error,
                                   403 permission_error, 404 not_found_error, 413 request_too_large,
                                   429 rate_limit_error, 500 api_error, 504 timeout_error,
                                   529 overloaded_error; other 4xx invalid_request_error, other 5xx api_error.
                                   If several status markers apply, the first one in the prompt wins.
    [mock:retry-after=S]           retry-after: S on error responses (429 and 529 send "retry-after: 1" by default).
    [mock:retry-after-ms=MS]       also send retry-after-ms: MS on error responses.
    [mock:should-retry=true|false] x-should-retry header on error responses.
    [mock:disconnect]              stream: after the preamble and N//2 deltas, close the TCP connection (FIN,
                                   no message_stop / [DONE], no chunked terminator). Non-streaming: headers and
                                   half of the body, then close.
    [mock:malformed]               stream: before delta min(3, N//2), send one event whose data line is invalid
                                   JSON, then continue normally (the valid deltas still make up the reply).
                                   Non-streaming: 200 with a truncated (invalid) JSON body.
    [mock:error-event]             stream: instead of delta min(3, N//2), send event: error (overloaded_error)
                                   and end the chunked body properly, without message_stop ([DONE] for OpenAI).
                                   Non-streaming: 529 overloaded_error (OpenAI endpoint: 503).
    [mock:error-event-early]       the same one delta interval after message_start + ping, before
                                   content_block_start and any delta (OpenAI: after the role chunk).
                                   [mock:error-event-earlyxN]: first N only. Non-streaming: as [mock:error-event].
    [mock:slow-headers=S]          wait S seconds before the status line.
    [mock:stall=S]                 after the first delta, send nothing for S seconds, then continue.
    [mock:latency=S]               this request's total latency.
    [mock:html]                    append ' <script>alert("xss")</script><img src=x onerror="alert(1)">'
                                   '<a href="javascript:alert(2)">link</a>' to the reply.
    [mock:max-tokens]              stop_reason max_tokens (OpenAI finish_reason length).
    [mock:long=N]                  append N extra words " word1 word2 ... wordN" (after the html addition).
    [mock:markdown]                reply MARKDOWN_REPLY (the demo's Markdown answer), spread over the latency
                                   ([mock:latency=S], else at least MARKDOWN_LATENCY seconds); html and long
                                   additions still apply after it.

    Gateway modes (what LLM routers, caching proxies and company gateways in front of a provider really send; the
    reply's text is unchanged, so a client that accepts the mode ends with exactly the usual reply):
    [mock:gateway-json]            a streaming request gets the whole non-streaming answer at once (a Message, a
                                   chat completion) with content-type: application/json.
    [mock:no-event-lines]          stream: no "event:" lines, only "data:" (Anthropic; OpenAI streams never have them).
    [mock:unknown-events]          stream: events of unknown types ("event: gateway_metadata", an unnamed one with an
                                   unknown "type", one whose data is not JSON; OpenAI: named events "gateway.heartbeat"
                                   and "gateway.note"), a ": comment", and an unknown field "x_gateway" added to every
                                   JSON event.
    [mock:done-anthropic]          Anthropic stream: "data: [DONE]" instead of the message_stop event.
    [mock:crlf]                    stream: every line ends with CRLF.
    [mock:cr]                      stream: every line ends with a lone CR.
    [mock:usage-empty-choices]     OpenAI stream: a chunk with "choices": null, then the usage chunk with "choices": []
                                   (sent even without stream_options.include_usage).
    The attempt number used by xN counts the requests with that prompt that passed authentication and
    validation; POST /mock/reset zeroes it.

STATS (GET /mock/stats)
    requests_total, requests_by_prompt (every request to /v1/messages or /v1/chat/completions counts,
    faulty or not; by prompt when the body had one), streams_active, streams_completed (sent to the end,
    including streams ended by an error event), streams_aborted (client closed first), streams_disconnected
    (ended by [mock:disconnect]), connections_open, connections_total, max_concurrent_streams,
    streams_active_by_peer ({client IP: streams open now}, peers with none left out), responses_by_status,
    uptime_seconds. Reset zeroes counters; the gauges (streams_active, streams_active_by_peer,
    connections_open) stay, and max_concurrent_streams restarts from streams_active.

HTTP: HTTP/1.1 keep-alive and pipelining, Connection: close, HTTP/1.0, Content-Length and chunked request
bodies, Expect: 100-continue, 32 MB body limit (413). A malformed request gets 400 and the connection is
closed. Unknown paths get 404 not_found_error JSON (HEAD: the same headers, no body). A client closing (or half-closing) its side while a response is being generated aborts it.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import signal
import sys
import time
import traceback
from email.utils import formatdate

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_LINES = 200
MAX_BODY_BYTES = 32 * 1024 * 1024
READ_HIGH_WATER = 64 * 1024
MAX_LONG_WORDS = 200_000

# The offline demo's answer (--markdown, [mock:markdown]): what a model's answer to an ordinary question looks like
# (models write a paragraph on one line; a line break inside a paragraph is shown as one).
MARKDOWN_REPLY = """## A mock answer, in Markdown

This answer comes from the **mock LLM** that `scripts/run` starts when no `ANTHROPIC_API_KEY` is set. It streams in word by word, like a real model's, and is rendered once it is complete: headings, lists, `inline code`, code blocks, tables and [links](https://commonmark.org/help/).

### Steps

1. Put your key in `.env` as `ANTHROPIC_API_KEY=...`.
2. Run `scripts/run` again.
3. Ask a question: the answer comes from the real API.

### An example in Python

```python
import json
import urllib.request

def ask(question: str) -> str:
    \"\"\"Start a task and return its id.\"\"\"
    body = json.dumps({"query": question}).encode()
    request = urllib.request.Request("https://localhost:8443/api/tasks", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["id"]
```

### What the page shows

| Part | While streaming | When done |
|:-----|:----------------|:---------:|
| Text | plain, escaped | rendered Markdown |
| Code | as typed | a block with a **Copy** button |
| Links | as typed | links that open no window on this page |

- [x] Raw HTML is shown as text, never run.
- [x] ~~Images are loaded~~ Images become links.
- [ ] Your question is answered: that needs a real model.

> Results are kept for an hour; the JSON API (`/api/tasks/ID`) returns this text as Markdown, unchanged.

That is all: every answer on this page is rendered the same way."""

# At least this long (seconds) to stream MARKDOWN_REPLY when no [mock:latency=S] is given, so streaming shows.
MARKDOWN_LATENCY = 4.0

HTML_ADDITION = ' <script>alert("xss")</script><img src=x onerror="alert(1)"><a href="javascript:alert(2)">link</a>'

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
    505: "HTTP Version Not Supported", 529: "Overloaded",
}

ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}

OPENAI_ERRORS = {  # status -> (type, code)
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
    504: ("server_error", "timeout"),
    529: ("overloaded_error", "overloaded"),
}


def anthropic_error_type(status):
    if status in ANTHROPIC_ERRORS:
        return ANTHROPIC_ERRORS[status]
    return ("api_error", "Internal server error") if status >= 500 else ("invalid_request_error", "Invalid request.")


def openai_error_type(status):
    if status in OPENAI_ERRORS:
        return OPENAI_ERRORS[status]
    return ("server_error", None) if status >= 500 else ("invalid_request_error", None)


def dumps(obj):
    """Compact JSON as UTF-8 bytes (raw UTF-8; \\u escapes only when the text has lone surrogates)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def jstr(text):
    """A JSON string literal (str) for text."""
    s = json.dumps(text, ensure_ascii=False)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return json.dumps(text)


def jstr_line(prompt, index, t):
    """One --delta-log line."""
    return json.dumps({"p": prompt, "i": index, "t": t}) + "\n"


def new_id(prefix):
    return prefix + secrets.token_hex(12)


_WORD_RE = re.compile(r"\S+\s*|\s+")


def split_deltas(text):
    """Word plus following whitespace; leading whitespace (never present in replies) gets its own delta."""
    return _WORD_RE.findall(text)


# ---------------------------------------------------------------------------------------------------------
# Markers

_MARKER_RE = re.compile(r"\[mock:(\d{3}|[a-z][a-z-]*[a-z])(?:=([^\]\s]*?))?(?:x(\d+))?\]", re.IGNORECASE)


def _float(v, default=None):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    if f != f or f < 0 or f == float("inf"):
        return default
    return f


class Faults:
    __slots__ = ("status", "retry_after", "retry_after_ms", "should_retry", "disconnect", "malformed",
                 "error_event", "error_event_early", "slow_headers", "stall", "latency", "html",
                 "max_tokens", "long", "markdown", "gateway_json", "no_event_lines", "unknown_events",
                 "done_anthropic", "line_end", "usage_empty_choices")

    def __init__(self):
        self.status = None
        self.retry_after = None
        self.retry_after_ms = None
        self.should_retry = None
        self.disconnect = False
        self.malformed = False
        self.error_event = False
        self.error_event_early = False
        self.slow_headers = 0.0
        self.stall = 0.0
        self.latency = None
        self.html = False
        self.max_tokens = False
        self.long = 0
        self.markdown = False
        self.gateway_json = False
        self.no_event_lines = False
        self.unknown_events = False
        self.done_anthropic = False
        self.line_end = b"\n"
        self.usage_empty_choices = False


def has_markers(prompt):
    return "[mock:" in prompt.lower()


def parse_faults(prompt, attempt):
    """Faults active for this attempt (1-based count of validated requests with this prompt)."""
    f = Faults()
    if not has_markers(prompt):
        return f
    for m in _MARKER_RE.finditer(prompt):
        name, value, count = m.group(1).lower(), m.group(2), m.group(3)
        if count is not None and attempt > int(count):
            continue
        if name.isdigit():
            code = int(name)
            if 400 <= code <= 599 and f.status is None:
                f.status = code
        elif name == "retry-after":
            v = _float(value)
            if v is not None:
                f.retry_after = value
        elif name == "retry-after-ms":
            v = _float(value)
            if v is not None:
                f.retry_after_ms = value
        elif name == "should-retry":
            if value is not None and value.lower() in ("true", "false"):
                f.should_retry = value.lower()
        elif name == "disconnect":
            f.disconnect = True
        elif name == "malformed":
            f.malformed = True
        elif name == "error-event":
            f.error_event = True
        elif name == "error-event-early":
            f.error_event_early = True
        elif name == "slow-headers":
            f.slow_headers = _float(value, 0.0)
        elif name == "stall":
            f.stall = _float(value, 0.0)
        elif name == "latency":
            v = _float(value)
            if v is not None:
                f.latency = v
        elif name == "html":
            f.html = True
        elif name == "max-tokens":
            f.max_tokens = True
        elif name == "markdown":
            f.markdown = True
        elif name == "gateway-json":
            f.gateway_json = True
        elif name == "no-event-lines":
            f.no_event_lines = True
        elif name == "unknown-events":
            f.unknown_events = True
        elif name == "done-anthropic":
            f.done_anthropic = True
        elif name == "crlf":
            f.line_end = b"\r\n"
        elif name == "cr":
            f.line_end = b"\r"
        elif name == "usage-empty-choices":
            f.usage_empty_choices = True
        elif name == "long":
            try:
                f.long = max(0, min(MAX_LONG_WORDS, int(value)))
            except (TypeError, ValueError):
                pass
    return f


def wants_markdown(prompt, faults, markdown_default=False):
    """[mock:markdown], or --markdown for a prompt without any marker (tests' prompts keep their exact reply)."""
    return faults.markdown or (markdown_default and not has_markers(prompt))


def build_reply(prompt, faults, markdown_default=False):
    text = MARKDOWN_REPLY if wants_markdown(prompt, faults, markdown_default) else "Mock reply to: " + prompt
    if faults.html:
        text += HTML_ADDITION
    if faults.long:
        text += " " + " ".join("word%d" % i for i in range(1, faults.long + 1))
    return text


# ---------------------------------------------------------------------------------------------------------
# Request body validation


class BadRequest(Exception):
    pass


def _content_text(content, blocks_kind):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if not isinstance(b, dict) or not isinstance(b.get("type"), str):
                raise BadRequest("%s: each content block must be an object with a type" % blocks_kind)
            if b["type"] == "text":
                if not isinstance(b.get("text"), str):
                    raise BadRequest("%s: text block needs a string text" % blocks_kind)
                parts.append(b["text"])
        return "\n".join(parts)
    raise BadRequest("%s: content must be a string or a list of content blocks" % blocks_kind)


def validate_anthropic(body):
    """Returns (model, prompt, stream) or raises BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required")
    mt = body.get("max_tokens")
    if isinstance(mt, bool) or not isinstance(mt, int):
        raise BadRequest("max_tokens: Field required")
    if mt < 1:
        raise BadRequest("max_tokens: must be greater than or equal to 1")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("messages: Field required")
    prompt = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise BadRequest("messages.%d: must be an object" % i)
        if m.get("role") not in ("user", "assistant"):
            raise BadRequest("messages.%d.role: Input should be 'user' or 'assistant'" % i)
        if "content" not in m:
            raise BadRequest("messages.%d.content: Field required" % i)
        text = _content_text(m["content"], "messages.%d.content" % i)
        if m["role"] == "user":
            prompt = text
    if prompt is None:
        raise BadRequest("messages: at least one user message is required")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("stream: Input should be a valid boolean")
    return model, prompt, stream


def validate_openai(body):
    """Returns (model, prompt, stream, include_usage) or raises BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise BadRequest("'messages' is a required property and must be a non-empty array")
    prompt = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise BadRequest("messages[%d]: must be an object with a role" % i)
        content = m.get("content")
        if content is None:
            if m["role"] == "user":
                raise BadRequest("messages[%d].content: required for user messages" % i)
            continue
        text = _content_text(content, "messages[%d].content" % i)
        if m["role"] == "user":
            prompt = text
    if prompt is None:
        raise BadRequest("messages: at least one user message is required")
    for k in ("max_tokens", "max_completion_tokens"):
        v = body.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise BadRequest("%s: must be a positive integer" % k)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise BadRequest("stream: must be a boolean")
    include_usage = False
    so = body.get("stream_options")
    if so is not None:
        if not isinstance(so, dict):
            raise BadRequest("stream_options: must be an object")
        include_usage = so.get("include_usage") is True
    return model, prompt, stream, include_usage


def extract_prompt(body):
    """Best effort (for stats): text of the last user message, or None."""
    try:
        msgs = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(msgs, list):
            return None
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "user":
                return _content_text(m.get("content"), "content")
    except BadRequest:
        return None
    return None


# ---------------------------------------------------------------------------------------------------------
# Connection protocol


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _wake(fut):
    if fut is not None and not fut.done():
        fut.set_result(None)


class Conn(asyncio.Protocol):
    """Small per-connection state; the handler coroutine reads from buf and writes to transport."""

    __slots__ = ("srv", "transport", "buf", "eof", "lost", "paused_r", "paused_w", "data_waiter",
                 "sleep_waiter", "drain_waiter", "task", "call_status", "call_outcome", "__weakref__")

    def __init__(self, srv):
        self.srv = srv
        self.transport = None
        self.buf = bytearray()
        self.eof = False
        self.lost = False
        self.paused_r = False
        self.paused_w = False
        self.data_waiter = None
        self.sleep_waiter = None
        self.drain_waiter = None
        self.task = None
        # For --call-log: the status line and the outcome of the LLM call being answered.
        self.call_status = None
        self.call_outcome = None

    # protocol callbacks
    def connection_made(self, transport):
        self.transport = transport
        self.srv.conn_opened(self)
        self.task = self.srv.loop.create_task(self.srv.handle(self))

    def data_received(self, data):
        self.buf += data
        if len(self.buf) > READ_HIGH_WATER and not self.paused_r:
            self.paused_r = True
            self.transport.pause_reading()
        _wake(self.data_waiter)

    def eof_received(self):
        self.eof = True
        _wake(self.data_waiter)
        _wake(self.sleep_waiter)
        return True  # keep the write side open (half-close)

    def connection_lost(self, exc):
        self.lost = True
        self.eof = True
        _wake(self.data_waiter)
        _wake(self.sleep_waiter)
        _wake(self.drain_waiter)
        self.srv.conn_closed(self)

    def pause_writing(self):
        self.paused_w = True

    def resume_writing(self):
        self.paused_w = False
        _wake(self.drain_waiter)

    # helpers for the handler
    def gone(self):
        return self.lost or self.eof or self.transport.is_closing()

    def write(self, data):
        if self.lost or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    async def drain(self):
        while self.paused_w and not self.lost:
            fut = self.srv.loop.create_future()
            self.drain_waiter = fut
            try:
                await fut
            finally:
                self.drain_waiter = None
        return not self.lost

    async def sleep(self, delay):
        """Sleep; return False early if the client closed or half-closed the connection."""
        if self.gone():
            return False
        if delay <= 0:
            return True
        loop = self.srv.loop
        fut = loop.create_future()
        h = loop.call_later(delay, _wake, fut)
        self.sleep_waiter = fut
        try:
            await fut
        finally:
            h.cancel()
            self.sleep_waiter = None
        return not self.gone()

    async def wait_data(self, timeout=None):
        """Wait for more input. True if data arrived; False on EOF, connection loss or timeout."""
        if self.paused_r and not self.lost:
            self.paused_r = False
            self.transport.resume_reading()
        if self.eof:
            return False
        loop = self.srv.loop
        fut = loop.create_future()
        h = loop.call_later(timeout, _wake, fut) if timeout else None
        self.data_waiter = fut
        n = len(self.buf)
        try:
            await fut
        finally:
            if h is not None:
                h.cancel()
            self.data_waiter = None
        return len(self.buf) > n

    async def read_exact(self, n):
        """n bytes, or None if the client closed or went idle too long."""
        while len(self.buf) < n:
            if not await self.wait_data(self.srv.args.idle_timeout) and len(self.buf) < n:
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_line(self, limit):
        """One line without its CRLF, or None if the client closed or went idle too long."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line.rstrip(b"\r\n")
            if len(self.buf) > limit:
                raise HttpError(400, "line too long")
            if not await self.wait_data(self.srv.args.idle_timeout) and self.buf.find(b"\n") < 0:
                return None


_HDR_END = re.compile(rb"\r?\n\r?\n")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION_RE = re.compile(r"^HTTP/(\d)\.(\d)$")


class Request:
    __slots__ = ("method", "target", "path", "version", "headers", "body", "keep_alive")


async def read_request(c, idle_timeout):
    """Parse one request from the connection. None when the client is done; raises HttpError."""
    buf = c.buf
    while True:
        i = 0
        n = len(buf)
        while i < n and buf[i] in (13, 10):
            i += 1
        if i:
            del buf[:i]
        m = _HDR_END.search(buf)
        if m:
            break
        if len(buf) > MAX_HEADER_BYTES:
            raise HttpError(431, "request header fields too large")
        if c.eof:
            if buf and not c.lost:
                raise HttpError(400, "incomplete request")
            return None
        if not await c.wait_data(idle_timeout) and not c.eof:
            return None  # idle timeout
    if m.start() > MAX_HEADER_BYTES:
        raise HttpError(431, "request header fields too large")
    head = bytes(buf[:m.start()]).decode("latin-1")
    del buf[:m.end()]
    lines = head.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN_RE.match(parts[0]) or not parts[1]:
        raise HttpError(400, "malformed request line")
    vm = _VERSION_RE.match(parts[2])
    if not vm:
        raise HttpError(400, "malformed HTTP version")
    if vm.group(1) != "1":
        raise HttpError(505, "HTTP version not supported")
    if len(lines) > MAX_HEADER_LINES:
        raise HttpError(431, "too many header fields")
    req = Request()
    req.method = parts[0]
    req.target = parts[1]
    req.path = parts[1].split("?", 1)[0]
    req.version = (1, int(vm.group(2)))
    headers = {}
    cls = []
    for line in lines[1:]:
        if not line or line[0] in " \t":
            raise HttpError(400, "malformed header (obsolete line folding)")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN_RE.match(name):
            raise HttpError(400, "malformed header field")
        name = name.lower()
        value = value.strip(" \t")
        if "\r" in value or "\x00" in value:
            raise HttpError(400, "invalid header value")
        if name == "content-length":
            cls.extend(v.strip() for v in value.split(","))
        if name in headers:
            headers[name] = headers[name] + ", " + value
        else:
            headers[name] = value
    req.headers = headers
    conn_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if req.version == (1, 1):
        req.keep_alive = "close" not in conn_tokens
    else:
        req.keep_alive = "keep-alive" in conn_tokens

    te = headers.get("transfer-encoding")
    expect = headers.get("expect", "").lower() == "100-continue"
    if te is not None:
        if cls:
            raise HttpError(400, "both Transfer-Encoding and Content-Length")
        if te.strip().lower() != "chunked":
            raise HttpError(501, "unsupported transfer-encoding")
        if req.version == (1, 0):
            raise HttpError(400, "chunked body in HTTP/1.0")
        if expect and not buf:
            c.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        req.body = await read_chunked(c)
        if req.body is None:
            return None
    elif cls:
        if any(not v.isdigit() or not v.isascii() for v in cls) or len(set(int(v) for v in cls)) != 1:
            raise HttpError(400, "invalid Content-Length")
        n = int(cls[0])
        if n > MAX_BODY_BYTES:
            raise HttpError(413, "request body exceeds %d bytes" % MAX_BODY_BYTES)
        if n:
            if expect and len(buf) < n:
                c.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            req.body = await c.read_exact(n)
            if req.body is None:
                return None
        else:
            req.body = b""
    else:
        req.body = b""
    return req


async def read_chunked(c):
    parts = []
    total = 0
    while True:
        line = await c.read_line(4096)
        if line is None:
            return None
        size_s = line.split(b";", 1)[0].strip()
        try:
            if not size_s or not all(ch in b"0123456789abcdefABCDEF" for ch in size_s):
                raise ValueError
            size = int(size_s, 16)
        except ValueError:
            raise HttpError(400, "malformed chunk size")
        if size == 0:
            for _ in range(MAX_HEADER_LINES):  # trailers
                t = await c.read_line(MAX_HEADER_BYTES)
                if t is None:
                    return None
                if not t:
                    return b"".join(parts)
            raise HttpError(400, "too many trailer fields")
        total += size
        if total > MAX_BODY_BYTES:
            raise HttpError(413, "request body exceeds %d bytes" % MAX_BODY_BYTES)
        data = await c.read_exact(size)
        if data is None:
            return None
        parts.append(data)
        crlf = await c.read_line(2)
        if crlf is None:
            return None
        if crlf:
            raise HttpError(400, "malformed chunk terminator")


# ---------------------------------------------------------------------------------------------------------
# Server


def chunk(payload):
    return b"%x\r\n%s\r\n" % (len(payload), payload)


CHUNK_END = b"0\r\n\r\n"


def gateway_shape(faults):
    """How a gateway mode rewrites each SSE event (bytes ending in a blank line): an extra unknown field in its JSON,
    no event: lines, other line endings. The identity when no mode is on."""
    if not (faults.unknown_events or faults.no_event_lines or faults.line_end != b"\n"):
        return None

    def shape(ev):
        if faults.unknown_events:
            ev = ev.replace(b"data: {", b'data: {"x_gateway":{"cache":"miss","route":[1,2]},', 1)
        if faults.no_event_lines:
            ev = b"".join(line for line in ev.splitlines(keepends=True) if not line.startswith(b"event:"))
        if faults.line_end != b"\n":
            ev = ev.replace(b"\n", faults.line_end)
        return ev

    return shape


def unknown_events(kind, faults):
    """The extra events of [mock:unknown-events]: unknown types, a comment, and (when event: lines are kept) an event
    whose data is not JSON."""
    if kind == "anthropic":
        events = [b'event: gateway_metadata\ndata: {"type":"gateway_metadata","cache":"miss"}\n\n',
                  b'data: {"type":"content_block_annotation","index":0,"note":{"source":"gateway"}}\n\n']
        note = b"event: gateway_note\ndata: routed by the mock gateway\n\n"
    else:
        events = [b'event: gateway.heartbeat\ndata: {"type":"heartbeat","at":1}\n\n']
        note = b"event: gateway.note\ndata: routed by the mock gateway\n\n"
    events.append(b": a comment from the mock gateway\n\n")
    if not faults.no_event_lines:
        events.append(note)
    return events


class Stats:
    def __init__(self):
        self.started = time.time()
        self.streams_active = 0
        self.streams_active_by_peer = {}
        self.connections_open = 0
        self.reset()

    def reset(self):
        self.requests_total = 0
        self.requests_by_prompt = {}
        self.streams_completed = 0
        self.streams_aborted = 0
        self.streams_disconnected = 0
        self.connections_total = 0
        self.max_concurrent_streams = self.streams_active
        self.responses_by_status = {}

    def as_dict(self):
        return {
            "requests_total": self.requests_total,
            "requests_by_prompt": self.requests_by_prompt,
            "streams_active": self.streams_active,
            "streams_completed": self.streams_completed,
            "streams_aborted": self.streams_aborted,
            "streams_disconnected": self.streams_disconnected,
            "connections_open": self.connections_open,
            "connections_total": self.connections_total,
            "max_concurrent_streams": self.max_concurrent_streams,
            "streams_active_by_peer": dict(self.streams_active_by_peer),
            "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
            "uptime_seconds": round(time.time() - self.started, 3),
        }


class StreamCtx:
    """Bookkeeping for one streamed response: counts it active, then completed/aborted/disconnected."""

    __slots__ = ("stats", "done", "conn", "peer")

    def __init__(self, stats, conn=None):
        self.stats = stats
        self.done = False
        self.conn = conn
        self.peer = None
        try:
            info = conn.transport.get_extra_info("peername") if conn is not None else None
            self.peer = info[0] if info else None
        except (AttributeError, IndexError, TypeError):
            self.peer = None
        if self.peer is not None:
            stats.streams_active_by_peer[self.peer] = stats.streams_active_by_peer.get(self.peer, 0) + 1
        stats.streams_active += 1
        if stats.streams_active > stats.max_concurrent_streams:
            stats.max_concurrent_streams = stats.streams_active

    def finish(self, outcome):
        if self.done:
            return
        self.done = True
        if self.conn is not None and self.conn.call_outcome is None:
            self.conn.call_outcome = outcome
        st = self.stats
        st.streams_active -= 1
        if self.peer is not None:
            left = st.streams_active_by_peer.get(self.peer, 1) - 1
            if left > 0:
                st.streams_active_by_peer[self.peer] = left
            else:
                st.streams_active_by_peer.pop(self.peer, None)
        if outcome == "completed":
            st.streams_completed += 1
        elif outcome == "disconnected":
            st.streams_disconnected += 1
        else:
            st.streams_aborted += 1


class MockServer:
    def __init__(self, args):
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.stats = Stats()
        self.attempts = {}
        self.conns = set()
        self._date_sec = 0
        self._date = ""
        self._rl_window = 0
        self._rl_requests = 0
        self._rl_tokens = 0
        # Line-buffered: a reader sees each delta's line as soon as the delta is on the wire.
        self.delta_log = open(args.delta_log, "a", buffering=1) if getattr(args, "delta_log", None) else None
        self.call_log = open(args.call_log, "a", buffering=1) if getattr(args, "call_log", None) else None

    # connection bookkeeping
    def conn_opened(self, c):
        self.conns.add(c)
        self.stats.connections_open += 1
        self.stats.connections_total += 1

    def conn_closed(self, c):
        if c in self.conns:
            self.conns.discard(c)
            self.stats.connections_open -= 1

    def log(self, msg):
        if self.args.verbose:
            sys.stderr.write("mock: %s\n" % msg)

    # response helpers
    def date(self):
        now = int(time.time())
        if now != self._date_sec:
            self._date_sec = now
            self._date = formatdate(now, usegmt=True)
        return self._date

    def head(self, status, headers, keep, body_len=None, chunked=False):
        self.stats.responses_by_status[status] = self.stats.responses_by_status.get(status, 0) + 1
        out = ["HTTP/1.1 %d %s\r\ndate: %s\r\nserver: longhaul-mock\r\n" % (status, REASONS.get(status, "Status"), self.date())]
        for k, v in headers:
            out.append("%s: %s\r\n" % (k, v))
        if body_len is not None:
            out.append("content-length: %d\r\n" % body_len)
        elif chunked:
            out.append("transfer-encoding: chunked\r\n")
        out.append("connection: keep-alive\r\n\r\n" if keep else "connection: close\r\n\r\n")
        return "".join(out).encode("latin-1")

    def send(self, c, status, headers, body, keep, head_only=False):
        """A complete response. head_only (HEAD requests): the same headers, content-length of the body, no body."""
        c.call_status = status
        c.write(self.head(status, headers, keep, body_len=len(body)) + (b"" if head_only else body))

    def ratelimit_headers(self, kind, tokens, status):
        now = time.time()
        window = int(now // 60)
        if window != self._rl_window:
            self._rl_window = window
            self._rl_requests = 0
            self._rl_tokens = 0
        self._rl_requests += 1
        self._rl_tokens += tokens
        req_limit, tok_limit = 4000, 400000
        req_rem = 0 if status == 429 else max(0, req_limit - self._rl_requests)
        tok_rem = 0 if status == 429 else max(0, tok_limit - self._rl_tokens)
        tok_rem = int(round(tok_rem / 1000.0)) * 1000
        if kind == "anthropic":
            reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((window + 1) * 60))
            return [
                ("anthropic-ratelimit-requests-limit", str(req_limit)),
                ("anthropic-ratelimit-requests-remaining", str(req_rem)),
                ("anthropic-ratelimit-requests-reset", reset),
                ("anthropic-ratelimit-tokens-limit", str(tok_limit)),
                ("anthropic-ratelimit-tokens-remaining", str(tok_rem)),
                ("anthropic-ratelimit-tokens-reset", reset),
                ("anthropic-ratelimit-input-tokens-limit", str(tok_limit)),
                ("anthropic-ratelimit-input-tokens-remaining", str(tok_rem)),
                ("anthropic-ratelimit-input-tokens-reset", reset),
                ("anthropic-ratelimit-output-tokens-limit", str(tok_limit // 5)),
                ("anthropic-ratelimit-output-tokens-remaining", str(tok_rem // 5 // 1000 * 1000)),
                ("anthropic-ratelimit-output-tokens-reset", reset),
            ]
        left = max(1, (window + 1) * 60 - int(now))
        return [
            ("x-ratelimit-limit-requests", str(req_limit)),
            ("x-ratelimit-remaining-requests", str(req_rem)),
            ("x-ratelimit-reset-requests", "%ds" % left),
            ("x-ratelimit-limit-tokens", str(tok_limit)),
            ("x-ratelimit-remaining-tokens", str(tok_rem)),
            ("x-ratelimit-reset-tokens", "%ds" % left),
        ]

    def error_response(self, c, kind, status, message, rid, keep, faults=None, extra=(), head_only=False):
        if kind == "anthropic":
            etype, default_msg = anthropic_error_type(status)
            body = dumps({"type": "error", "error": {"type": etype, "message": message or default_msg},
                          "request_id": rid})
            headers = [("content-type", "application/json"), ("request-id", rid)]
        else:
            etype, code = openai_error_type(status)
            body = dumps({"error": {"message": message or anthropic_error_type(status)[1], "type": etype,
                                    "param": None, "code": code}})
            headers = [("content-type", "application/json"), ("x-request-id", rid)]
        retry_after = None
        if faults is not None and faults.retry_after is not None:
            retry_after = faults.retry_after
        elif status in (429, 529):
            retry_after = "1"
        if retry_after is not None:
            headers.append(("retry-after", retry_after))
        if faults is not None and faults.retry_after_ms is not None:
            headers.append(("retry-after-ms", faults.retry_after_ms))
        if faults is not None and faults.should_retry is not None:
            headers.append(("x-should-retry", faults.should_retry))
        headers.extend(extra)
        self.send(c, status, headers, body, keep, head_only)
        self.log("%s %d %s" % (kind, status, rid))
        return keep

    # main per-connection coroutine
    async def handle(self, c):
        try:
            while True:
                try:
                    req = await read_request(c, self.args.idle_timeout)
                except HttpError as e:
                    if not c.lost:
                        rid = new_id("req_mock_")
                        self.error_response(c, "anthropic", e.status, e.message, rid, False)
                        await self.linger_close(c)
                    break
                if req is None:
                    break
                keep = await self.dispatch(c, req)
                if not keep or c.lost or c.transport.is_closing():
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
        finally:
            if c.transport is not None and not c.transport.is_closing():
                c.transport.close()

    async def linger_close(self, c, timeout=2.0):
        """After an error response that ends the connection: send FIN, then discard input until the client
        closes (or timeout), so that unread request bytes do not turn our close into an RST that could
        destroy the response before the client reads it."""
        if c.lost or c.transport.is_closing():
            return
        try:
            c.transport.write_eof()
        except (OSError, RuntimeError):
            return
        deadline = self.loop.time() + timeout
        while not c.eof:
            c.buf.clear()
            left = deadline - self.loop.time()
            if left <= 0:
                break
            await c.wait_data(left)
        c.buf.clear()

    async def dispatch(self, c, req):
        keep = req.keep_alive
        path, method = req.path, req.method
        ho = method == "HEAD"  # a HEAD response carries the headers (and content-length) but never a body
        if path in ("/v1/messages", "/v1/chat/completions"):
            kind = "anthropic" if path == "/v1/messages" else "openai"
            if method != "POST":
                self.stats.requests_total += 1
                return self.error_response(c, kind, 405, "Method Not Allowed", new_id("req_mock_"), keep,
                                           extra=[("allow", "POST")], head_only=ho)
            return await self.llm(c, req, kind)
        if path == "/mock/stats" and method in ("GET", "HEAD"):
            body = dumps(self.stats.as_dict())
            self.send(c, 200, [("content-type", "application/json"), ("cache-control", "no-store")], body, keep, ho)
            return keep
        if path == "/mock/reset" and method == "POST":
            self.stats.reset()
            self.attempts.clear()
            self.send(c, 200, [("content-type", "application/json")], b'{"ok":true}', keep)
            return keep
        if path == "/mock/health" and method in ("GET", "HEAD"):
            self.send(c, 200, [("content-type", "text/plain; charset=utf-8")], b"ok", keep, ho)
            return keep
        if path in ("/mock/stats", "/mock/reset", "/mock/health"):
            return self.error_response(c, "anthropic", 405, "Method Not Allowed", new_id("req_mock_"), keep,
                                       extra=[("allow", "POST" if path == "/mock/reset" else "GET, HEAD")],
                                       head_only=ho)
        return self.error_response(c, "anthropic", 404, "Not found: %s %s" % (method, path), new_id("req_mock_"),
                                   keep, head_only=ho)

    async def llm(self, c, req, kind):
        """One upstream call; with --call-log, its line is written when it ends (whatever way it ends)."""
        c.call_status = None
        c.call_outcome = None
        start = time.time()
        keep = False
        try:
            keep = await self._llm(c, req, kind)
            return keep
        finally:
            if self.call_log is not None:
                self.write_call_log(c, req, start)

    def write_call_log(self, c, req, start):
        status = c.call_status
        outcome = c.call_outcome
        if status is not None and status >= 400:
            outcome = "error"
        elif outcome is None:
            outcome = "aborted" if (status is None or c.lost) else "completed"
        prompt = None
        try:
            prompt = extract_prompt(json.loads(req.body.decode("utf-8"))) if req.body.strip() else None
        except Exception:
            prompt = None
        peer = None
        try:
            info = c.transport.get_extra_info("peername") if c.transport is not None else None
            peer = info[0] if info else None
        except Exception:
            peer = None
        line = json.dumps({"prompt": prompt, "peer": peer, "start": start, "end": time.time(),
                           "outcome": outcome, "status": status}, ensure_ascii=False)
        try:
            self.call_log.write(line + "\n")
        except UnicodeEncodeError:
            self.call_log.write(json.dumps(json.loads(line), ensure_ascii=True) + "\n")

    async def _llm(self, c, req, kind):
        st = self.stats
        st.requests_total += 1
        rid = new_id("req_mock_")
        body = None
        json_error = None
        if not req.body.strip():
            json_error = "request body is empty"
        else:
            try:
                body = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                json_error = "invalid JSON in request body: %s" % e
            except RecursionError:
                json_error = "invalid JSON in request body: nested too deeply"
        prompt = extract_prompt(body)
        if prompt is not None:
            st.requests_by_prompt[prompt] = st.requests_by_prompt.get(prompt, 0) + 1
        keep = req.keep_alive
        h = req.headers

        # authentication
        if kind == "anthropic":
            key = h.get("x-api-key", "")
            if not key:
                return self.error_response(c, kind, 401, "x-api-key header is required", rid, keep)
        else:
            auth = h.get("authorization", "")
            scheme, _, key = auth.partition(" ")
            key = key.strip()
            if scheme.lower() != "bearer" or not key:
                return self.error_response(
                    c, kind, 401, "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", rid, keep)
        if self.args.api_key is not None and key != self.args.api_key:
            return self.error_response(c, kind, 401, "invalid x-api-key" if kind == "anthropic"
                                       else "Incorrect API key provided.", rid, keep)
        if kind == "anthropic" and not h.get("anthropic-version"):
            return self.error_response(c, kind, 400, "anthropic-version: header is required", rid, keep)

        # validation
        if json_error is not None:
            return self.error_response(c, kind, 400, json_error, rid, keep)
        try:
            if kind == "anthropic":
                model, prompt, stream = validate_anthropic(body)
                include_usage = False
            else:
                model, prompt, stream, include_usage = validate_openai(body)
        except BadRequest as e:
            return self.error_response(c, kind, 400, str(e), rid, keep)

        attempt = self.attempts.get(prompt, 0) + 1
        self.attempts[prompt] = attempt
        faults = parse_faults(prompt, attempt)
        latency = self.args.latency if faults.latency is None else faults.latency
        input_tokens = len(prompt.split())
        self.log("%s attempt=%d stream=%s prompt=%r" % (kind, attempt, stream, prompt[:80]))

        if faults.slow_headers > 0:
            if not await c.sleep(faults.slow_headers):
                return False
        if faults.status is not None:
            extra = self.ratelimit_headers(kind, input_tokens, faults.status)
            return self.error_response(c, kind, faults.status, None, rid, keep, faults, extra)

        markdown_default = getattr(self.args, "markdown", False)
        reply = build_reply(prompt, faults, markdown_default)
        if faults.latency is None and wants_markdown(prompt, faults, markdown_default):
            latency = max(latency, MARKDOWN_LATENCY)
        deltas = split_deltas(reply)
        rl = self.ratelimit_headers(kind, input_tokens + len(deltas), 200)
        if faults.gateway_json:
            stream = False  # a gateway that answers a stream request with the whole answer
        if kind == "anthropic":
            if stream:
                return await self.anthropic_stream(c, req, rid, rl, model, input_tokens, deltas, latency, faults,
                                                   tag=prompt)
            return await self.anthropic_message(c, req, rid, rl, model, input_tokens, reply, deltas, latency, faults)
        if stream:
            return await self.openai_stream(c, req, rid, rl, model, input_tokens, deltas, latency, faults,
                                            include_usage, tag=prompt)
        return await self.openai_completion(c, req, rid, rl, model, input_tokens, reply, deltas, latency, faults)

    # ---- non-streaming replies

    async def _nonstream(self, c, req, kind, rid, rl, obj, latency, faults):
        keep = req.keep_alive
        if not await c.sleep(latency + faults.stall):
            c.call_outcome = "aborted"
            return False
        if faults.error_event or faults.error_event_early:
            return self.error_response(c, kind, 529 if kind == "anthropic" else 503, "Overloaded", rid, keep,
                                       faults, rl)
        idh = ("request-id" if kind == "anthropic" else "x-request-id", rid)
        headers = [("content-type", "application/json"), idh] + rl
        body = dumps(obj)
        if faults.malformed:
            body = body[:max(1, len(body) // 2)]
            self.send(c, 200, headers, body, keep)
            return keep
        if faults.disconnect:
            c.call_status = 200
            c.call_outcome = "disconnected"
            c.write(self.head(200, headers, False, body_len=len(body)) + body[:len(body) // 2])
            c.transport.close()
            return False
        self.send(c, 200, headers, body, keep)
        return keep

    async def anthropic_message(self, c, req, rid, rl, model, input_tokens, reply, deltas, latency, faults):
        obj = {
            "id": new_id("msg_mock_"), "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": reply}], "model": model,
            "stop_reason": "max_tokens" if faults.max_tokens else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": len(deltas)},
        }
        return await self._nonstream(c, req, "anthropic", rid, rl, obj, latency, faults)

    async def openai_completion(self, c, req, rid, rl, model, input_tokens, reply, deltas, latency, faults):
        obj = {
            "id": new_id("chatcmpl-mock"), "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "logprobs": None, "finish_reason": "length" if faults.max_tokens else "stop"}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": len(deltas),
                      "total_tokens": input_tokens + len(deltas)},
        }
        return await self._nonstream(c, req, "openai", rid, rl, obj, latency, faults)

    # ---- streaming replies

    async def _run_stream(self, c, req, head, preamble, deltas, latency, faults, make_delta, make_error,
                          make_malformed, epilogue, tag=None):
        """Shared streaming loop. Returns keep-alive. make_* return SSE event bytes (unframed).
        tag: the prompt, for --delta-log."""
        keep = req.keep_alive
        chunked = req.version == (1, 1)
        if not chunked:
            keep = False
        raw_frame = chunk if chunked else (lambda b: b)
        shape = gateway_shape(faults)
        frame = raw_frame if shape is None else (lambda b: raw_frame(shape(b)))
        ctx = StreamCtx(self.stats, c)
        c.call_status = 200
        try:
            if not c.write(head):
                ctx.finish("aborted")
                return False
            n = len(deltas)
            early = faults.error_event_early
            err_at = min(3, n // 2) if faults.error_event else -1
            mal_at = min(3, n // 2) if faults.malformed else -1
            disc_at = n // 2 if faults.disconnect else -1
            for ev in (preamble[:2] if early else preamble):
                c.write(frame(ev))
            loop = self.loop
            interval = latency / n if n else 0.0
            base = loop.time()
            for i in range(n):
                delay = base + (i + 1) * interval - loop.time()
                if delay > 0:
                    if not await c.sleep(delay):
                        ctx.finish("aborted")
                        return False
                if c.gone():
                    ctx.finish("aborted")
                    return False
                if (early and i == 0) or i == err_at:
                    c.call_outcome = "error"
                    c.write(frame(make_error()))
                    if chunked:
                        c.write(CHUNK_END)
                    else:
                        c.transport.close()
                    ctx.finish("completed")
                    return keep
                if i == disc_at:
                    c.transport.close()  # flushes what was written, then FIN
                    ctx.finish("disconnected")
                    return False
                if i == mal_at:
                    c.write(frame(make_malformed()))
                if self.delta_log is not None:
                    self.delta_log.write(jstr_line(tag, i, time.time()))
                c.write(frame(make_delta(i)))
                if c.paused_w and not await c.drain():
                    ctx.finish("aborted")
                    return False
                if i == 0 and faults.stall > 0:
                    if not await c.sleep(faults.stall):
                        ctx.finish("aborted")
                        return False
                    base += faults.stall
            for ev in epilogue:
                c.write(frame(ev))
            if chunked:
                c.write(CHUNK_END)
            else:
                c.transport.close()
            if c.lost or (c.paused_w and not await c.drain()):
                ctx.finish("aborted")
                return False
            ctx.finish("completed")
            return keep
        finally:
            ctx.finish("aborted")

    async def anthropic_stream(self, c, req, rid, rl, model, input_tokens, deltas, latency, faults, tag=None):
        keep = req.keep_alive and req.version == (1, 1)
        head = self.head(200, [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"),
                               ("request-id", rid)] + rl, keep, chunked=req.version == (1, 1))
        msg_start = dumps({"type": "message_start", "message": {
            "id": new_id("msg_mock_"), "type": "message", "role": "assistant", "content": [], "model": model,
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}})
        preamble = [
            b"event: message_start\ndata: " + msg_start + b"\n\n",
            b'event: ping\ndata: {"type":"ping"}\n\n',
            b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
            b'"content_block":{"type":"text","text":""}}\n\n',
        ]
        if faults.unknown_events:
            preamble += unknown_events("anthropic", faults)
        stop_reason = "max_tokens" if faults.max_tokens else "end_turn"
        epilogue = [
            b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
            b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"' + stop_reason.encode()
            + b'","stop_sequence":null},"usage":{"output_tokens":' + str(len(deltas)).encode() + b'}}\n\n',
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
        ]
        if faults.unknown_events:
            epilogue[1:1] = unknown_events("anthropic", faults)
        if faults.done_anthropic:
            epilogue[-1] = b"data: [DONE]\n\n"

        def make_delta(i):
            return (('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                     '"delta":{"type":"text_delta","text":%s}}\n\n') % jstr(deltas[i])).encode("utf-8")

        def make_error():
            return (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                    b'"message":"Overloaded"}}\n\n')

        def make_malformed():
            return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                    b'"delta":{"type":"text_delta","text":"unterminated\n\n')

        return await self._run_stream(c, req, head, preamble, deltas, latency, faults, make_delta, make_error,
                                      make_malformed, epilogue, tag)

    async def openai_stream(self, c, req, rid, rl, model, input_tokens, deltas, latency, faults, include_usage,
                            tag=None):
        keep = req.keep_alive and req.version == (1, 1)
        head = self.head(200, [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"),
                               ("x-request-id", rid)] + rl, keep, chunked=req.version == (1, 1))
        cid = new_id("chatcmpl-mock")
        created = int(time.time())
        prefix = '{"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,"choices":[' % (
            cid, created, jstr(model))
        usage_null = ',"usage":null' if include_usage else ""
        n = len(deltas)
        finish = "length" if faults.max_tokens else "stop"
        preamble = [('data: %s{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]%s}\n\n'
                     % (prefix, usage_null)).encode("utf-8")]
        if faults.unknown_events:
            preamble += unknown_events("openai", faults)
        epilogue = []
        if n == 0:
            epilogue.append(('data: %s{"index":0,"delta":{},"logprobs":null,"finish_reason":"%s"}]%s}\n\n'
                             % (prefix, finish, usage_null)).encode("utf-8"))
        if faults.unknown_events:
            epilogue += unknown_events("openai", faults)
        if faults.usage_empty_choices:
            epilogue.append(('data: {"id":"%s","object":"chat.completion.chunk","created":%d,"model":%s,'
                             '"choices":null}\n\n' % (cid, created, jstr(model))).encode("utf-8"))
        if include_usage or faults.usage_empty_choices:
            epilogue.append(('data: %s],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
                             % (prefix, input_tokens, n, input_tokens + n)).encode("utf-8"))
        epilogue.append(b"data: [DONE]\n\n")

        def make_delta(i):
            fr = ('"%s"' % finish) if i == n - 1 else "null"
            return ('data: %s{"index":0,"delta":{"content":%s},"logprobs":null,"finish_reason":%s}]%s}\n\n'
                    % (prefix, jstr(deltas[i]), fr, usage_null)).encode("utf-8")

        def make_error():
            return b'data: {"error":{"message":"Overloaded","type":"overloaded_error"}}\n\n'

        def make_malformed():
            return ('data: %s{"index":0,"delta":{"content":"unterminated\n\n' % prefix).encode("utf-8")

        return await self._run_stream(c, req, head, preamble, deltas, latency, faults, make_delta, make_error,
                                      make_malformed, epilogue, tag)


# ---------------------------------------------------------------------------------------------------------


def raise_nofile_limit():
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard
        if hard == resource.RLIM_INFINITY:
            target = 1 << 20
        if soft == resource.RLIM_INFINITY or soft >= target:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            if hard == resource.RLIM_INFINITY:
                resource.setrlimit(resource.RLIMIT_NOFILE, (65536, hard))
    except (ValueError, OSError) as e:
        sys.stderr.write("mock: could not raise RLIMIT_NOFILE: %s\n" % e)


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def amain(args):
    loop = asyncio.get_running_loop()
    srv = MockServer(args)
    server = await loop.create_server(lambda: Conn(srv), args.host, args.port, backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.port_file:
        write_port_file(args.port_file, port)
    host = args.host if ":" not in args.host else "[%s]" % args.host
    sys.stderr.write("mock LLM listening on http://%s:%d\n" % (host, port))
    sys.stderr.flush()
    await stop.wait()
    server.close()
    tasks = []
    for c in list(srv.conns):
        if c.transport is not None:
            c.transport.abort()
        if c.task is not None:
            c.task.cancel()
            tasks.append(c.task)
    if tasks:
        await asyncio.wait(tasks, timeout=2)
    try:
        await asyncio.wait_for(server.wait_closed(), 1)
    except (asyncio.TimeoutError, Exception):
        pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="anthropic_mock.py",
        description="Mock LLM provider (Anthropic Messages API and OpenAI-compatible chat completions) "
                    "with fault injection. See the module docstring for endpoints and [mock:...] markers.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free port (default 0)")
    p.add_argument("--port-file", default=None, help="write the bound port number to this file (atomically)")
    p.add_argument("--latency", type=float, default=1.0,
                   help="seconds over which a reply's deltas are spread (default 1.0)")
    p.add_argument("--api-key", default=None, help="accept only this API key (default: any non-empty key)")
    p.add_argument("--idle-timeout", type=float, default=300.0,
                   help="close a keep-alive connection idle for this many seconds (default 300)")
    p.add_argument("--delta-log", default=None, metavar="FILE",
                   help="append a JSON line (prompt, delta index, time) per streamed delta (default: off)")
    p.add_argument("--markdown", action="store_true",
                   help="answer prompts without a [mock:...] marker with a Markdown demo answer (default: off)")
    p.add_argument("--call-log", default=None, metavar="FILE",
                   help="append a JSON line (prompt, peer, start, end, outcome, status) per LLM call when it "
                        "ends (default: off)")
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = p.parse_args(argv)
    if args.latency < 0:
        p.error("--latency must be >= 0")
    if not 0 <= args.port <= 65535:
        p.error("--port must be between 0 and 65535")
    return args


def main(argv=None):
    args = parse_args(argv)
    raise_nofile_limit()
    try:
        asyncio.run(amain(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
