"""Tests for the mock's gateway modes ([mock:gateway-json], [mock:no-event-lines], [mock:unknown-events],
[mock:done-anthropic], [mock:crlf], [mock:cr], [mock:usage-empty-choices]): each sends what a gateway in front of a
provider really sends, and the reply's text stays exactly the usual one.

Run from the repository root:
    python3 -m unittest discover -s mock -p 'test_*.py' -v
"""

import json
import re
import unittest

from test_anthropic_mock import MockTestCase, expected_reply, unique


def parse_sse(data):
    """Events of a text/event-stream body as the WHATWG parser reads them (CRLF, CR and LF line ends):
    a list of (name or None, data)."""
    events, name, lines = [], None, []
    for line in re.split(r"\r\n|\r|\n", data.decode("utf-8")):
        if line == "":
            if lines:
                events.append((name, "\n".join(lines)))
            name, lines = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            lines.append(value)
    return events


def anthropic_text(events):
    """The text of an Anthropic stream, reading each event's JSON type (as a client must without event: lines);
    also returns the types in order, and whether the stream ended (message_stop or [DONE])."""
    text, types, ended = "", [], False
    for _, data in events:
        if data == "[DONE]":
            types.append("[DONE]")
            ended = True
            continue
        try:
            obj = json.loads(data)
        except ValueError:
            types.append("(not JSON)")
            continue
        types.append(obj.get("type"))
        if obj.get("type") == "content_block_delta":
            text += obj["delta"]["text"]
        if obj.get("type") == "message_stop":
            ended = True
    return text, types, ended


def openai_text(events):
    """The text of an OpenAI stream, the chunks' choices (a list per chunk, or None), the usage, and [DONE] seen."""
    text, choices, usage, done = "", [], None, False
    for name, data in events:
        if data == "[DONE]":
            done = True
            continue
        if name is not None:
            continue  # a named event is not a chunk
        obj = json.loads(data)
        choices.append(obj.get("choices"))
        for choice in obj.get("choices") or []:
            text += choice["delta"].get("content") or ""
        usage = obj.get("usage") or usage
    return text, choices, usage, done


class GatewayModeTests(MockTestCase):
    def test_gateway_json_answers_a_stream_request_with_the_whole_message(self):
        prompt = unique("whole message [mock:gateway-json]")
        status, headers, data = self.anthropic(prompt, stream=True)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        message = json.loads(data)
        self.assertEqual(message["type"], "message")
        self.assertEqual(message["content"], [{"type": "text", "text": expected_reply(prompt)}])
        status, headers, data = self.openai(prompt, stream=True, include_usage=True)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        completion = json.loads(data)
        self.assertEqual(completion["object"], "chat.completion")
        self.assertEqual(completion["choices"][0]["message"]["content"], expected_reply(prompt))

    def test_no_event_lines(self):
        prompt = unique("bare data [mock:no-event-lines]")
        status, headers, data = self.anthropic(prompt, stream=True)
        self.assertEqual(status, 200, data)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        self.assertNotIn(b"event:", data)
        events = parse_sse(data)
        self.assertTrue(all(name is None for name, _ in events))
        text, types, ended = anthropic_text(events)
        self.assertEqual(text, expected_reply(prompt))
        self.assertEqual(types[0], "message_start")
        self.assertEqual(types[-1], "message_stop")
        self.assertTrue(ended)

    def test_unknown_events_and_fields(self):
        prompt = unique("extras [mock:unknown-events]")
        status, _, data = self.anthropic(prompt, stream=True)
        self.assertEqual(status, 200, data)
        events = parse_sse(data)
        names = [name for name, _ in events]
        self.assertIn("gateway_metadata", names)
        self.assertIn("gateway_note", names)
        text, types, ended = anthropic_text(events)
        self.assertIn("content_block_annotation", types)
        self.assertIn("(not JSON)", types)
        self.assertEqual(text, expected_reply(prompt))
        self.assertTrue(ended)
        self.assertIn(b": a comment from the mock gateway", data)
        for name, payload in events:
            if name in ("message_start", "content_block_delta", "message_stop"):
                self.assertIn("x_gateway", json.loads(payload))
        status, _, data = self.openai(prompt, stream=True, include_usage=True)
        self.assertEqual(status, 200, data)
        events = parse_sse(data)
        self.assertIn("gateway.heartbeat", [name for name, _ in events])
        self.assertIn("gateway.note", [name for name, _ in events])
        text, _, usage, done = openai_text(events)
        self.assertEqual(text, expected_reply(prompt))
        self.assertIsNotNone(usage)
        self.assertTrue(done)

    def test_unknown_events_without_event_lines_are_all_json(self):
        prompt = unique("extras, bare [mock:unknown-events] [mock:no-event-lines]")
        _, _, data = self.anthropic(prompt, stream=True)
        text, types, ended = anthropic_text(parse_sse(data))
        self.assertNotIn("(not JSON)", types)
        self.assertIn("gateway_metadata", types)
        self.assertEqual(text, expected_reply(prompt))
        self.assertTrue(ended)

    def test_done_instead_of_message_stop(self):
        prompt = unique("sentinel [mock:done-anthropic]")
        _, _, data = self.anthropic(prompt, stream=True)
        events = parse_sse(data)
        text, types, ended = anthropic_text(events)
        self.assertEqual(text, expected_reply(prompt))
        self.assertEqual(types[-1], "[DONE]")
        self.assertNotIn("message_stop", types)
        self.assertTrue(ended)

    def test_crlf_and_cr_line_endings(self):
        for marker, ending in (("crlf", b"\r\n"), ("cr", b"\r")):
            prompt = unique("line ends [mock:%s]" % marker)
            _, _, data = self.anthropic(prompt, stream=True)
            self.assertIn(ending + ending, data)
            if ending == b"\r":
                self.assertNotIn(b"\n", data)
            else:
                self.assertNotIn(b"\n\n", data)
                self.assertEqual(data.count(b"\n"), data.count(b"\r\n"))
            text, _, ended = anthropic_text(parse_sse(data))
            self.assertEqual(text, expected_reply(prompt), marker)
            self.assertTrue(ended)
            _, _, data = self.openai(prompt, stream=True)
            self.assertIn(ending + ending, data)
            text, _, _, done = openai_text(parse_sse(data))
            self.assertEqual(text, expected_reply(prompt), marker)
            self.assertTrue(done)

    def test_usage_with_null_then_empty_choices(self):
        prompt = unique("usage [mock:usage-empty-choices]")
        _, _, data = self.openai(prompt, stream=True, include_usage=False)
        text, choices, usage, done = openai_text(parse_sse(data))
        self.assertEqual(text, expected_reply(prompt))
        self.assertEqual(choices[-2:], [None, []])
        self.assertEqual(usage["prompt_tokens"], len(prompt.split()))
        self.assertTrue(done)


if __name__ == "__main__":
    unittest.main()
