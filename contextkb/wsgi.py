"""WSGI entry point."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

application = get_wsgi_application()

from apps.core.db import require_pgvector  # noqa: E402

require_pgvector()
