#!/usr/bin/env python3
"""A minimal FastCGI client for scripts/bench part 8: sends the same request N times, each on a new connection
(as nginx does with `fastcgi_keep_conn off`), with the parameters nginx's `fastcgi_params` and wrk's headers
give, and checks every answer's status.

Usage: bench/fcgi_client.py --socket PATH --uri '/check?task_id=…' [--count N] [--method GET] [--body TEXT] [--hx]
                            [--output FILE]
Prints one JSON line: {"requests": N, "bytes": total stdout bytes, "statuses": {"200": N}}. --output writes the
last answer (the responder's whole FastCGI stdout: headers, blank line, body) to FILE.
"""

import argparse
import json
import socket
import struct
import sys

FCGI_VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1


def record(kind, content, request_id=1):
    return struct.pack(">BBHHBx", FCGI_VERSION, kind, request_id, len(content), 0) + content


def name_value(name, value):
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)

    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def params_for(method, uri, body, hx):
    path, _, query = uri.partition("?")
    params = {
        # nginx's fastcgi_params, in its order, with the values a loopback request through nginx gets.
        "QUERY_STRING": query, "REQUEST_METHOD": method,
        "CONTENT_TYPE": "application/x-www-form-urlencoded" if body else "",
        "CONTENT_LENGTH": str(len(body)) if body else "", "SCRIPT_NAME": path, "REQUEST_URI": uri,
        "DOCUMENT_URI": path, "DOCUMENT_ROOT": "/usr/share/nginx/html", "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_SCHEME": "http", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "nginx/1.22.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "REMOTE_USER": "", "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": "8080", "SERVER_NAME": "localhost", "REDIRECT_STATUS": "200",
        # wrk's request headers.
        "HTTP_HOST": "127.0.0.1:8080",
    }
    if hx:
        params["HTTP_HX_REQUEST"] = "true"
    if body:
        params["HTTP_CONTENT_TYPE"] = params["CONTENT_TYPE"]
        params["HTTP_CONTENT_LENGTH"] = params["CONTENT_LENGTH"]
    return params


def one_request(path, message):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(message)
        data = bytearray()
        stdout = bytearray()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        offset = 0
        ended = False
        while offset + 8 <= len(data):
            _, kind, _, length, padding = struct.unpack(">BBHHB", data[offset:offset + 7])
            content = data[offset + 8:offset + 8 + length]
            offset += 8 + length + padding
            if kind == STDOUT:
                stdout += content
            elif kind == END_REQUEST:
                ended = True
        if not ended:
            raise RuntimeError("no END_REQUEST")
        head = bytes(stdout).split(b"\r\n\r\n", 1)[0].decode("latin-1")
        status = "200"
        for line in head.split("\r\n"):
            if line.lower().startswith("status:"):
                status = line.split(":", 1)[1].strip().split(" ")[0]
        return status, bytes(stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--hx", action="store_true")
    parser.add_argument("--output", help="write the last answer here")
    args = parser.parse_args()
    body = args.body.encode()
    params = b"".join(name_value(k, v) for k, v in params_for(args.method, args.uri, body, args.hx).items())
    message = record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0)) + record(PARAMS, params) + record(PARAMS, b"")
    if body:
        message += record(STDIN, body)
    message += record(STDIN, b"")
    statuses = {}
    total = 0
    answer = b""
    for _ in range(args.count):
        status, answer = one_request(args.socket, message)
        statuses[status] = statuses.get(status, 0) + 1
        total += len(answer)
    if args.output:
        with open(args.output, "wb") as f:
            f.write(answer)
    print(json.dumps({"requests": args.count, "bytes": total, "statuses": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
