"""`contextkb mcp`: a stdio MCP server that forwards every message to the remote `/mcp`.

MCP's stdio transport is one JSON-RPC message per line on stdin/stdout; its Streamable HTTP
transport is a POST per message, answered with JSON, with an SSE stream, or with 202 for
notifications and responses. This bridge does the translation with httpx alone (no MCP SDK):

- each line from stdin is POSTed to `<url>/mcp` with the bearer token and
  `Accept: application/json, text/event-stream`; requests run concurrently, so a slow tool call
  does not hold up a ping or a cancellation;
- a JSON answer is written to stdout as one line; an SSE answer is written message by message;
- the `Mcp-Session-Id` the server hands out at initialisation is sent on every later request
  (and the session is ended with DELETE at exit), as is the negotiated `MCP-Protocol-Version`;
- when the server cannot be reached or refuses a request, the client gets a JSON-RPC error for
  that request (and a line on stderr), never silence.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import httpx

# JSON-RPC error codes: -32700 parse error; -32000 an error of the implementation (here: the
# remote server could not answer).
PARSE_ERROR = -32700
REMOTE_ERROR = -32000


class McpProxy:
    def __init__(
        self,
        *,
        url: str,
        token: str,
        timeout: float,
        user_agent: str,
        stdout: BinaryIO,
        stderr=None,
    ):
        self.url = url
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "User-Agent": user_agent},
            # Tool calls may take a while; connecting may not.
            timeout=httpx.Timeout(timeout, read=max(timeout, 300.0)),
        )
        self.stdout = stdout
        self.stderr = stderr or sys.stderr
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._write_lock = threading.Lock()

    # --- output ---------------------------------------------------------------------------------

    def _emit(self, message) -> None:
        line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        with self._write_lock:
            self.stdout.write(line)
            self.stdout.flush()

    def _emit_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self._log(f"ignored a message from the server that is not JSON: {text[:80]!r}")
            return
        self._note_initialize(message)
        self._emit(message)

    def _log(self, text: str) -> None:
        print(f"contextkb mcp: {text}", file=self.stderr, flush=True)

    def _error_for(self, message, code: int, text: str) -> None:
        """A JSON-RPC error to every request in `message` (notifications get none)."""
        self._log(text)
        for item in message if isinstance(message, list) else [message]:
            if isinstance(item, dict) and "method" in item and item.get("id") is not None:
                self._emit(
                    {"jsonrpc": "2.0", "id": item["id"], "error": {"code": code, "message": text}}
                )

    def _note_initialize(self, message) -> None:
        if isinstance(message, dict):
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                self.protocol_version = result["protocolVersion"]

    # --- one message ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    def forward(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._log("stdin: a line that is not JSON")
            self._emit(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": PARSE_ERROR, "message": "Parse error"},
                }
            )
            return
        if isinstance(message, dict) and message.get("method") == "initialize":
            # A new initialisation starts a new session (also after the server lost the old).
            self.session_id = self.protocol_version = None
        try:
            with self.client.stream(
                "POST", self.url, content=raw, headers=self._headers()
            ) as response:
                if response.status_code >= 400:
                    self._answer_error(message, response)
                    return
                session = response.headers.get("mcp-session-id")
                if session:
                    self.session_id = session
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind == "text/event-stream":
                    self._relay_sse(response)
                elif kind == "application/json":
                    body = response.read().decode("utf-8", "replace")
                    if body.strip():
                        self._emit_text(body)
                # 202 Accepted (a notification or a response): nothing to pass on.
        except httpx.TransportError as exc:
            text = f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}".splitlines()[0]
            self._error_for(message, REMOTE_ERROR, text)

    def _answer_error(self, message, response: httpx.Response) -> None:
        body = response.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        asked = message.get("id") if isinstance(message, dict) else None
        # The server's own JSON-RPC error for this request passes through unchanged; one
        # without the request's id (e.g. `null` for a lost session) would never be matched by
        # the client, so it is re-addressed below.
        if (
            isinstance(parsed, dict)
            and parsed.get("jsonrpc") == "2.0"
            and asked is not None
            and parsed.get("id") == asked
        ):
            self._emit(parsed)
            return
        detail = ""
        if isinstance(parsed, dict):
            error = parsed.get("error")
            if isinstance(error, dict):
                detail = str(error.get("message") or "")
            detail = detail or str(parsed.get("detail") or "")
        what = "refused the token" if response.status_code in (401, 403) else "answered"
        method = message.get("method") if isinstance(message, dict) else None
        text = (
            f"the server {what} ({response.status_code})"
            + (f" to {method}" if isinstance(method, str) else "")
            + (f": {detail}" if detail else "")
        )
        self._error_for(message, REMOTE_ERROR, text)

    def _relay_sse(self, response: httpx.Response) -> None:
        """Server-sent events: `data:` lines up to a blank line make one event; events of
        type `message` (the default) are JSON-RPC messages."""
        data: list[str] = []
        event = "message"
        for line in response.iter_lines():
            if line == "":
                if data and event == "message":
                    self._emit_text("\n".join(data))
                data, event = [], "message"
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "event":
                    event = value or "message"
        if data and event == "message":
            self._emit_text("\n".join(data))

    # --- the loop -------------------------------------------------------------------------------

    def run(self, stdin: BinaryIO) -> int:
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="mcp") as pool:
            first = True
            for raw in iter(stdin.readline, b""):
                if not raw.strip():
                    continue
                if first or not _is_request(raw):
                    # The initialisation runs alone (later requests need its session id), and
                    # notifications and responses are quick: sent in order, from this thread.
                    self.forward(raw)
                    first = False
                else:
                    pool.submit(self.forward, raw)
        if self.session_id:
            with contextlib.suppress(httpx.HTTPError):
                self.client.delete(self.url, headers=self._headers())
        self.client.close()
        return 0


def _is_request(raw: bytes) -> bool:
    try:
        message = json.loads(raw)
    except ValueError:
        return False
    return isinstance(message, dict) and "method" in message and message.get("id") is not None
