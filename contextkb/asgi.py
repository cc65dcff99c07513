"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

application = get_asgi_application()

from apps.core.db import require_pgvector_at_startup  # noqa: E402

require_pgvector_at_startup()

# The MCP server (Streamable HTTP) answers at /mcp beside Django; see docs/mcp.md.
from apps.mcp_server.asgi import with_mcp  # noqa: E402

application = with_mcp(application)
