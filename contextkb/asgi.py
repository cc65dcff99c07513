"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

application = get_asgi_application()

from apps.core.db import require_pgvector  # noqa: E402

require_pgvector()
