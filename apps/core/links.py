"""Absolute links to the app's own pages, for emails, the API, chat and AI tools."""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str) -> str:
    """`path` (site-relative, as `reverse` or `get_absolute_url` give it) on SITE_URL."""
    return settings.SITE_URL + path
