"""Markdown to HTML for record bodies, always sanitised: stored text is never trusted.

Rendering is bounded: cmark-gfm is linear in the input, bodies longer than
`MARKDOWN_INLINE_MAX_CHARS` are rendered in a child process stopped after
`MARKDOWN_RENDER_TIMEOUT` seconds (the body is then shown as plain text with a notice), and the
HTML is cached by a hash of the text, so a record page and its history pages render a given
body once, not on every view.
"""

import hashlib
import logging
import subprocess
import sys

from django.conf import settings
from django.core.cache import cache
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.core.markdown_render import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, render

__all__ = ["ALLOWED_ATTRIBUTES", "ALLOWED_TAGS", "URL_SCHEMES", "render_markdown"]
logger = logging.getLogger(__name__)

# Part of the cache key: bump it when the renderer or the allow-list changes.
RENDERER_VERSION = "cmark-gfm-1"
# Bodies shorter than this are cheap to render and are not cached.
CACHE_MIN_CHARS = 2_000
CACHE_SECONDS = 7 * 24 * 3600
FALLBACK_CACHE_SECONDS = 600
TOO_COMPLEX_NOTICE = "This text is too complex to format in time, so it is shown as plain text."


def cache_key(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return f"markdown:{RENDERER_VERSION}:{digest}"


def render_markdown(text: str) -> SafeString:
    """Render markdown and strip anything executable (scripts, handlers, dangerous URLs)."""
    text = text or ""
    if len(text) < CACHE_MIN_CHARS:
        return mark_safe(render(text))  # noqa: S308 - nh3 output is sanitised
    key = cache_key(text)
    try:
        html = cache.get(key)
    except Exception:  # a cache that is down (Redis) costs a render, never the page
        logger.warning("markdown cache unavailable", exc_info=True)
        html = None
    if html is None:
        html, formatted = _render_bounded(text)
        try:
            # A fallback may come from a moment of load: try formatting again a little later.
            cache.set(key, html, CACHE_SECONDS if formatted else FALLBACK_CACHE_SECONDS)
        except Exception:
            logger.warning("markdown cache unavailable", exc_info=True)
    return mark_safe(html)  # noqa: S308 - nh3 output, or our own escaped fallback


def _render_bounded(text: str) -> tuple[str, bool]:
    """(html, formatted): formatted is False when the plain-text fallback was used."""
    if len(text) <= settings.MARKDOWN_INLINE_MAX_CHARS:
        return render(text), True
    try:
        done = subprocess.run(
            [sys.executable, "-m", "apps.core.markdown_render"],
            input=text.encode("utf-8", "replace"),
            capture_output=True,
            timeout=settings.MARKDOWN_RENDER_TIMEOUT,
            cwd=settings.BASE_DIR,
            check=True,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError, OSError):
        return plain_text_html(text), False
    return done.stdout.decode("utf-8"), True


def plain_text_html(text: str) -> str:
    """The fallback: a notice and the text itself, escaped, as preformatted text."""
    return (
        f'<p class="muted markdown-fallback">{TOO_COMPLEX_NOTICE}</p>'
        f'<pre class="markdown-plain">{escape(text)}</pre>'
    )
