"""Bidirectional controls and invisible characters, through every door.

Short fields (title, summary, tags, anchors, deciders, link notes, gap questions) lose them on
save, whether the text came from the web form, the REST API or the markdown import. Bodies keep
them, and everything an AI tool reads (context markdown, agents.md, MCP) and the editor's
preview show them as visible `<U+XXXX>` escapes. MCP cases: tests/mcp_server/test_mcp.py.
"""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.core.text import INVISIBLE, reveal_invisible, strip_invisible
from apps.interchange import services as interchange
from apps.interchange import sources
from apps.records.models import Record
from apps.retrieval import services as retrieval_services
from apps.retrieval.models import Gap
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db

RLO = "\u202e"
# Displays as "Deploy on Fridays: never gnikcolb" -- or, reversed, as whatever the writer chose.
TITLE = f"Deploy on Fridays{RLO}: never{RLO}\u2066 \u200b"
BODY = f"Payments use the queue.{RLO}syas ti tahw ton si sihT\u2069 End."


def _api(owner) -> APIClient:
    client = APIClient()
    _, plain = make_token(owner, scope=ApiToken.Scope.READ_WRITE, name="rw")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def _assert_visible_only(text: str) -> None:
    assert not any(ch in text for ch in INVISIBLE), repr(text)


def test_the_helpers_strip_and_reveal_each_character():
    for ch in INVISIBLE:
        assert strip_invisible(f"a{ch}b") == "ab"
        assert reveal_invisible(f"a{ch}b") == f"a<U+{ord(ch):04X}>b"
    # Joiners stay: Persian words and emoji sequences need them.
    assert strip_invisible("می\u200cخواهم 👩\u200d💻") == "می\u200cخواهم 👩\u200d💻"


def test_web_form_saves_short_fields_without_them(client, owner, space):
    client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        reverse("web:record_create", kwargs={"slug": space.slug}),
        {
            "kind": "decision",
            "title": TITLE,
            "summary": f"One{RLO} line",
            "body": BODY,
            "status": "proposed",
            "owner": f"u:{owner.pk}",
            "tags": f"ops{RLO}, \u200bdeploys",
            "anchors": f"services/{RLO}deploy/**",
            "deciders": f"Platform{RLO}",
        },
    )
    assert response.status_code == 302
    record = Record.objects.get(space=space, key="DEC-1")
    assert record.title == "Deploy on Fridays: never"
    assert record.summary == "One line"
    assert record.tags == ["ops", "deploys"]
    assert record.anchors == ["services/deploy/**"]
    assert record.deciders == "Platform"
    assert record.body == BODY  # body text keeps them (right-to-left writing needs the marks)
    page = client.get(reverse("web:record_detail", kwargs={"slug": space.slug, "key": "DEC-1"}))
    heading = page.content.decode().split("<h1", 1)[1].split("</h1>", 1)[0]
    _assert_visible_only(heading)


def test_rest_api_saves_short_fields_without_them(owner, space):
    api = _api(owner)
    response = api.post(
        "/api/v1/records/",
        {
            "space": space.slug,
            "kind": "guardrail",
            "title": TITLE,
            "summary": f"{RLO}Mask card numbers",
            "tags": [f"pci{RLO}"],
            "body": BODY,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["title"] == "Deploy on Fridays: never"
    assert data["summary"] == "Mask card numbers"
    assert data["tags"] == ["pci"]
    record = Record.objects.get(pk=data["id"])
    patched = api.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": f"Renamed{RLO}\ufeff"},
        format="json",
        HTTP_IF_MATCH=f'"{record.version}"',
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["title"] == "Renamed"


def test_markdown_import_saves_short_fields_without_them(owner, space, tmp_path):
    (tmp_path / "0001-deploys.md").write_text(
        f"# 1. Deploy on{RLO} Fridays\u200f\n\nDate: 2026-01-05\n\n## Status\n\nAccepted\n\n"
        f"## Decision\n\n{BODY}\n",
        encoding="utf-8",
    )
    summary = interchange.import_files(
        space=space, files=sources.read_folder(tmp_path), actor=owner
    )
    assert len(summary.created) == 1
    record = Record.objects.get(space=space)
    assert "Deploy on Fridays" in record.title
    _assert_visible_only(record.title)
    assert RLO in record.body


def test_gap_reports_are_saved_without_them(owner, space):
    _, plain = make_token(owner, name="read")
    client = APIClient()
    response = client.post(
        "/api/v1/context/gaps/",
        {"query": f"how do we{RLO} deploy", "space": space.slug},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {plain}",
    )
    assert response.status_code == 201, response.content
    assert response.json()["gaps"][0]["query"] == "how do we deploy"
    assert Gap.objects.get().query == "how do we deploy"


@pytest.fixture
def hostile(space, owner):
    # Stored before the rule existed (or by a data import that bypassed it): outputs still
    # reveal the characters.
    record = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Queue every payment",
        body=BODY,
        anchors=["services/billing/**"],
        status="accepted",
    )
    Record.objects.filter(pk=record.pk).update(title=f"Queue every{RLO} payment")
    retrieval_services.embed_records(record_ids=[record.pk])
    return record


def test_context_markdown_shows_them_as_escapes(owner, space, hostile, settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    api = _api(owner)
    response = api.get(
        "/api/v1/context/",
        {"query": "queue payment", "paths": "services/billing/api.py", "format": "markdown"},
    )
    assert response.status_code == 200, response.content
    text = response.content.decode()
    _assert_visible_only(text)
    assert "Queue every<U+202E> payment" in text
    assert "queue.<U+202E>syas ti tahw ton si sihT<U+2069> End." in text


def test_context_json_shows_them_as_escapes_as_the_markdown_does(owner, space, hostile, settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    api = _api(owner)
    response = api.get(
        "/api/v1/context/", {"query": "queue payment", "paths": "services/billing/api.py"}
    )
    assert response.status_code == 200, response.content
    _assert_visible_only(response.content.decode("utf-8"))
    [item] = [i for i in response.json()["items"] if i["key"] == hostile.key]
    assert item["title"] == "Queue every<U+202E> payment"
    assert "queue.<U+202E>syas ti tahw ton si sihT<U+2069> End." in item["text"]


def test_agents_md_shows_them_as_escapes(owner, space, hostile):
    response = _api(owner).get("/api/v1/context/agents.md", {"space": space.slug})
    assert response.status_code == 200, response.content
    text = response.content.decode()
    _assert_visible_only(text)
    assert "Queue every<U+202E> payment" in text
    assert "<U+202E>syas ti tahw" in text


def test_editor_preview_shows_them_visibly(client, viewer):
    client.force_login(viewer, backend="django.contrib.auth.backends.ModelBackend")
    html = client.post(reverse("web:preview"), {"body": BODY}).content.decode()
    _assert_visible_only(html)
    assert "&lt;U+202E&gt;syas ti tahw" in html


def test_space_and_token_names_are_saved_without_them(owner):
    from apps.accounts import services as accounts

    space = accounts.space_create(name=f"Pay{RLO}ments team", slug="pay-team", actor=owner)
    assert space.name == "Payments team"
    token, _ = accounts.token_create(user=owner, name=f"ci{RLO}-bot", scope="read")
    assert token.name == "ci-bot"


def test_the_migration_cleans_short_fields_saved_before_the_rule(owner, space):
    import importlib

    from django.apps import apps

    from apps.records import services as record_services

    migration = importlib.import_module("apps.records.migrations.0006_strip_invisible_characters")
    record = make_record(space=space, actor=owner, title="Clean", body=BODY)
    other = make_record(space=space, actor=owner, title="Untouched")
    link = record_services.record_link(
        source=record, target=other, type="relates_to", actor=owner, note="n"
    )
    Record.objects.filter(pk=record.pk).update(
        title=f"Deploy{RLO} now",
        summary=f"{RLO}Short",
        tags=[f"ops{RLO}", "ops", "\u200b"],
        anchors=[f"services/{RLO}x/**"],
    )
    type(link).objects.filter(pk=link.pk).update(note=f"see{RLO}")
    migration.forwards(apps, None)
    record.refresh_from_db()
    link.refresh_from_db()
    assert (record.title, record.summary, record.tags, record.anchors) == (
        "Deploy now",
        "Short",
        ["ops"],
        ["services/x/**"],
    )
    assert record.body == BODY
    assert link.note == "see"
    other.refresh_from_db()
    assert other.title == "Untouched"
