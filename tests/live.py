"""Real servers for the tests: free ports, and an ASGI application (Django with /mcp, or any
other) under uvicorn in a thread, as the MCP, agent, OAuth and client tests need it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from django.db import connection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_asgi(application, *, port: int | None = None) -> Iterator[str]:
    """`application` under uvicorn on 127.0.0.1; yields its base URL, stops it afterwards."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def live_contextkb(*, static: bool = False) -> Iterator[str]:
    """contextkb's ASGI application as contextkb/asgi.py builds it (Django + MCP at /mcp), a
    fresh one per server (the SDK's session manager runs once per instance); `static` also
    serves static files, as whitenoise does in production, for pages shown in a browser."""
    from django.core.asgi import get_asgi_application

    from apps.mcp_server.asgi import with_mcp

    django_app = get_asgi_application()
    if static:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        django_app = ASGIStaticFilesHandler(django_app)
    with serve_asgi(with_mcp(django_app)) as url:
        yield url
    # The server's thread keeps its own database connection; end it so the test database can
    # be flushed and dropped.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
