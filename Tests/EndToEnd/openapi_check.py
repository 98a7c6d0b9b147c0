#!/usr/bin/env python3
"""Checks API answers recorded by the end-to-end suite against openapi.yaml.

Usage: openapi_check.py OPENAPI_YAML DIR

DIR holds one answer per NNNNN.meta (three lines: method, path with query string, status), NNNNN.headers (the
header block, without the status line's CR) and NNNNN.body, written by record_api_answer (Tests/EndToEnd/lib.sh).
Each answer must be one the document describes for its operation: a documented status, its media type, a body that
validates against the schema (JSON; for text/event-stream each event's data against StreamDelta, StreamError or
Task), and its required headers. Answers under /api/ that match no operation (an unknown address, a method the
address does not allow) must be the API's JSON error. HEAD answers have no body to check.

Prints one line per problem, then `checked N answers`; exits 1 when there was a problem. Needs PyYAML and
jsonschema (the pinned OpenAPI tools: scripts/lib.sh ensure_openapi_tools).
"""

import json
import os
import re
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
EVENT_SCHEMAS = {"delta": "StreamDelta", "error": "StreamError", "done": "Task"}
URN = "urn:longhaul:openapi"


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.document = yaml.safe_load(f)
        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(URN, resource)
        self.routes = []
        for template, item in self.document["paths"].items():
            segments = ("[^/]+" if part.startswith("{") else re.escape(part) for part in template.split("/"))
            pattern = "^" + "/".join(segments) + "$"
            self.routes.append((re.compile(pattern), template, item))

    def resolve(self, obj):
        """Follows an OpenAPI $ref (to a response, a header, a parameter) inside the document."""
        while isinstance(obj, dict) and "$ref" in obj:
            node = self.document
            for part in obj["$ref"].lstrip("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj

    def validator(self, schema):
        return Draft202012Validator(schema, registry=self.registry)

    def component(self, name):
        return self.validator({"$ref": URN + "#/components/schemas/" + name})

    def operation(self, method, path):
        """(template, operation or None, path matched)."""
        for pattern, template, item in self.routes:
            if pattern.match(path):
                return template, item.get(method.lower()), True
        return None, None, False


def media_type(content_type):
    return (content_type or "").split(";", 1)[0].strip().lower()


def read_headers(text):
    headers = {}
    for line in text.splitlines():
        if line.startswith("HTTP/") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return headers


def schema_errors(validator, instance):
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return ["%s at /%s" % (e.message[:200], "/".join(str(p) for p in e.absolute_path)) for e in errors[:3]]


def parse_events(text):
    events, name, ident, data = [], "message", None, []
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data:
                events.append((name, ident, "\n".join(data)))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            ident = value
    return events


def check_json(spec, validator, body, problems):
    try:
        instance = json.loads(body)
    except ValueError as error:
        problems.append("the body is not JSON (%s): %r" % (error, body[:120]))
        return
    problems.extend(schema_errors(validator, instance))


def check_events(spec, body, problems):
    envelope = spec.component("StreamEvent")
    for name, ident, data in parse_events(body):
        for problem in schema_errors(envelope, {"event": name, "id": ident, "data": data}):
            problems.append("event %s: %s" % (name, problem))
        if name not in ("delta", "error", "done", "reset"):
            problems.append("event %r is not one the document describes" % name)
            continue
        if ident is None or not re.match(r"^[0-9]+-[0-9]+$", ident):
            problems.append("event %s has id %r, not RUN-BYTES" % (name, ident))
        if name == "reset":
            continue
        try:
            instance = json.loads(data)
        except ValueError:
            problems.append("event %s data is not JSON: %r" % (name, data[:120]))
            continue
        for problem in schema_errors(spec.component(EVENT_SCHEMAS[name]), instance):
            problems.append("event %s: %s" % (name, problem))


def check_answer(spec, method, target, status, headers, body):
    """The problems of one answer (an empty list when it conforms)."""
    path = target.split("?", 1)[0]
    problems = []
    content_type = media_type(headers.get("content-type"))
    head = method == "HEAD"
    method = "GET" if head else method
    template, operation, matched = spec.operation(method, path)
    if operation is None:
        # No operation: an unknown address, or a method the address does not allow. The API's JSON error.
        if status < 400:
            problems.append("%s %s answered %d, but the document describes no such operation" % (method, path, status))
        elif not head:
            if content_type != "application/json":
                problems.append("an error answer of Content-Type %r, not application/json" % content_type)
            else:
                check_json(spec, spec.component("Error"), body, problems)
        if matched and status == 405 and "allow" not in headers:
            problems.append("405 without Allow")
        return problems
    responses = operation.get("responses", {})
    response = responses.get(str(status)) or responses.get("%dXX" % (status // 100)) or responses.get("default")
    if response is None:
        return ["status %d is not documented for %s %s (documented: %s)"
                % (status, method, template, ", ".join(sorted(responses)))]
    response = spec.resolve(response)
    for name, header in (response.get("headers") or {}).items():
        header = spec.resolve(header)
        value = headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append("the required header %s is missing" % name)
            continue
        for problem in schema_errors(spec.validator(header.get("schema", {})), value):
            problems.append("header %s: %s" % (name, problem))
    content = response.get("content") or {}
    if head or not content:
        return problems
    if content_type not in content:
        problems.append("Content-Type %r is not one of %s" % (content_type, ", ".join(sorted(content))))
        return problems
    if content_type == "application/json":
        schema = (content[content_type] or {}).get("schema", {})
        if "$ref" in schema:
            validator = spec.validator({"$ref": URN + schema["$ref"]})
        else:
            validator = spec.validator(schema)
        check_json(spec, validator, body, problems)
    elif content_type == "text/event-stream":
        check_events(spec, body, problems)
    return problems


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) == 2 else 64
    spec = Spec(argv[1])
    directory = argv[2]
    checked, failed = 0, 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".meta"):
            continue
        stem = os.path.join(directory, name[:-5])
        with open(stem + ".meta", encoding="utf-8", errors="replace") as f:
            method, target, status = (f.read().split("\n") + ["", "", ""])[:3]
        if not status.isdigit() or status == "000":
            continue  # no answer (the client gave up): nothing to check
        with open(stem + ".headers", encoding="latin-1") as f:
            headers = read_headers(f.read())
        with open(stem + ".body", encoding="utf-8", errors="replace") as f:
            body = f.read()
        checked += 1
        for problem in check_answer(spec, method, target, int(status), headers, body):
            failed += 1
            print("%s %s -> %s: %s" % (method, target[:120], status, problem))
    print("checked %d answers" % checked)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
