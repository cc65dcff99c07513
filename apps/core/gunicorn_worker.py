"""gunicorn's threaded worker, with the API's JSON error shape for requests gunicorn refuses
itself (an overlong request line or header, too many headers, a malformed request line).

gunicorn answers those before Django sees the request, with a small HTML page; API clients
expect `{"error": {"code", "message", "details"}}` from every answer (docs/api.md). gunicorn
writes that page with `gunicorn.util.write_error`; this worker replaces it, in its own process
only, with one that writes the same status as JSON. `gunicorn.conf.py` selects this worker.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

# gunicorn's statuses for what it refuses, as the API's error codes.
CODES = {
    400: "bad_request",
    403: "forbidden",
    431: "request_header_fields_too_large",
    500: "server_error",
    501: "not_implemented",
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's contract (status line, Connection: close), in JSON."""
    message = f"{reason}: {mesg}" if mesg else reason
    body = json.dumps(
        {"error": {"code": CODES.get(status_int, "bad_request"), "message": message, "details": {}}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


class JsonErrorWorker(ThreadWorker):
    """`gthread` (the worker `--threads` selects) whose own error answers are JSON."""

    def init_process(self):
        util.write_error = write_json_error
        super().init_process()
