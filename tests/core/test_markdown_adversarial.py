"""Markdown built to be slow renders at the largest allowed body size in bounded time.

Each payload is rendered at MAX_BODY_CHARS under an alarm of ALARM_SECONDS: generous (the
renderer stops a child process after MARKDOWN_RENDER_TIMEOUT, 5 s by default), and far below
the minutes Python-Markdown took on the same inputs. Speed figures are in docs/benchmarks.md
(bench/markdown_bench.py).
"""

import contextlib
import re
import signal

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse

from apps.core.markdown import TOO_COMPLEX_NOTICE, cache_key, render_markdown
from apps.records.services import MAX_BODY_CHARS
from tests.core.markdown_payloads import payloads
from tests.factories import make_record

pytestmark = pytest.mark.slow
ALARM_SECONDS = 30
PAYLOADS = payloads(MAX_BODY_CHARS)


class RenderTooSlow(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds: int):
    def on_alarm(signum, frame):
        raise RenderTooSlow(f"rendering took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return login


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("name", PAYLOADS)
def test_adversarial_body_renders_in_bounded_time(name):
    text = PAYLOADS[name]
    assert len(text) == MAX_BODY_CHARS
    with alarm(ALARM_SECONDS):
        html = str(render_markdown(text))
    assert "<script" not in html.lower()


def test_a_body_too_complex_to_format_in_time_is_shown_as_escaped_plain_text(settings):
    settings.MARKDOWN_RENDER_TIMEOUT = 1
    text = PAYLOADS["nested definition lists <dl><dd>"]
    with alarm(ALARM_SECONDS):
        html = str(render_markdown(text))
    assert TOO_COMPLEX_NOTICE in html
    assert "&lt;dl&gt;&lt;dd&gt;" in html
    assert "<dd>" not in html


@pytest.mark.django_db
def test_preview_of_unclosed_links_at_the_largest_size_answers(as_user, viewer):
    client = as_user(viewer)
    with alarm(ALARM_SECONDS):
        response = client.post(reverse("web:preview"), {"body": PAYLOADS["unclosed links [a]("]})
    assert response.status_code == 200
    assert "[a](" in response.content.decode()


@pytest.mark.django_db
def test_record_and_history_pages_reuse_the_rendered_body(as_user, space, owner):
    body = "# Heading\n\n" + PAYLOADS["unclosed code spans ``a`"][: MAX_BODY_CHARS - 11]
    record = make_record(space=space, actor=owner, title="Large body", body=body)
    client = as_user(owner)
    page = reverse("web:record_detail", kwargs={"slug": space.slug, "key": record.key})
    with alarm(ALARM_SECONDS):
        first = client.get(page)
    assert first.status_code == 200
    assert "<h1>Heading</h1>" in first.content.decode()
    assert cache.get(cache_key(body)) is not None

    # Both pages now read the cached HTML instead of rendering the body again.
    cache.set(cache_key(body), "<p>rendered once</p>")
    revision = reverse(
        "web:revision_detail", kwargs={"slug": space.slug, "key": record.key, "number": 1}
    )
    for url in (page, revision):
        response = client.get(url)
        assert response.status_code == 200
        assert re.search(r"<p>rendered once</p>", response.content.decode()), url


@pytest.mark.django_db
def test_a_cache_that_is_down_costs_a_render_not_the_page(as_user, space, owner):
    body = "## Decision\n\n" + "Use the queue. " * 400
    record = make_record(space=space, actor=owner, title="Queue", body=body)
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    client = as_user(owner)
    with override_settings(CACHES=down):
        response = client.get(
            reverse("web:record_detail", kwargs={"slug": space.slug, "key": record.key})
        )
    assert response.status_code == 200
    assert "<h2>Decision</h2>" in response.content.decode()
