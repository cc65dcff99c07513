"""Records in a space someone cannot see never leak through the records they can see.

The repro of issue 19: a member of two spaces links payments' CON-1 to a guardrail of a private
space (cross-space links are allowed) and edits it, and supersedes payments' DEC-1 with a
decision of the private space. A viewer of payments only, for whom those records are a 404,
must not read their titles, keys or URLs in any door: the record pages, history, review queue
and digest email, the REST API, the context API, agents.md, and MCP (official client). They
read "a record in a space you cannot see" instead; a member of both spaces still sees them.
"""

import asyncio

import pytest
from django.core import mail
from django.test import TestCase
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, Membership
from apps.records import services
from apps.records.models import Record
from apps.reminders import tasks
from apps.retrieval import services as retrieval_services
from apps.retrieval import usage
from tests.factories import MembershipFactory, SpaceFactory, make_record, make_token
from tests.mcp_server.test_mcp import _http_client, _text, live_mcp  # noqa: F401 - fixture

HIDDEN = "a record in a space you cannot see"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch, settings):
    settings.CONTEXTKB_EMBEDDINGS_PROVIDER = "wordllama"
    # Digests go out from this hour on: 0, so the digest test passes at any time of day.
    settings.REMINDERS_DIGEST_HOUR = 0
    monkeypatch.setattr(usage, "dispatch", lambda payload: None)


@pytest.fixture
def leak(space):
    """payments (`space`) and a private space; `bridge` is a member of both, `payer` (who owns
    the payments records) and `reader` of payments only."""
    private = SpaceFactory(name="Hidden ops", slug="hiddenops")
    bridge = MembershipFactory(
        space=space, role=Membership.Role.EDITOR, user__username="bridge"
    ).user
    MembershipFactory(user=bridge, space=private, role=Membership.Role.EDITOR)
    payer = MembershipFactory(space=space, role=Membership.Role.EDITOR, user__username="payer").user
    reader = MembershipFactory(
        space=space, role=Membership.Role.VIEWER, user__username="reader"
    ).user
    con = make_record(
        space=space,
        actor=bridge,
        kind="constraint",
        title="Refunds settle within one day",
        summary="Refunds settle within one business day.",
        owner_user=payer,
        status="accepted",
    )
    old = make_record(
        space=space,
        actor=bridge,
        title="Retry refunds nightly",
        summary="Retry failed refunds in a nightly batch.",
        owner_user=payer,
        status="accepted",
    )
    for n in range(3):  # the private space's keys must not coincide with payments' keys
        make_record(space=private, actor=bridge, title=f"Filler {n}")
    guard = make_record(
        space=private,
        actor=bridge,
        kind="guardrail",
        title="Quokkasecret key rotation",
        status="accepted",
    )
    successor = make_record(
        space=private, actor=bridge, title="Wombatsecret payout plan", status="accepted"
    )
    services.record_link(source=con, target=guard, type="depends_on", actor=bridge)
    services.record_link(source=con, target=old, type="depends_on", actor=bridge)
    guard = Record.objects.get(pk=guard.pk)
    services.record_update(
        record=guard,
        actor=bridge,
        expected_version=guard.version,
        changes={"body": "Rotate every 30 days."},
    )
    services.record_supersede(old=old, new=successor, actor=bridge)
    retrieval_services.embed_records(record_ids=[con.pk, old.pk, guard.pk, successor.pk])
    secrets = [
        "Quokkasecret",
        "Wombatsecret",
        guard.key,
        successor.key,
        "hiddenops",
        "Hidden ops",
    ]
    assert guard.key == "GRD-1" and successor.key == "DEC-4"
    return {
        "private": private,
        "bridge": bridge,
        "payer": payer,
        "reader": reader,
        "con": con,
        "old": old,
        "guard": guard,
        "successor": successor,
        "secrets": secrets,
    }


def assert_hidden(text: str, leak: dict, *, wording: bool = True) -> None:
    for secret in leak["secrets"]:
        assert secret not in text, f"{secret!r} leaked"
    if wording:
        assert HIDDEN in text.lower()


def _web(client, user):
    client.force_login(user, backend=MODEL_BACKEND)
    return client


# --- web --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_record_pages_name_hidden_records_only_to_members_of_their_space(client, leak):
    web = _web(client, leak["reader"])
    con = web.get("/s/payments/CON-1/").content.decode()
    old = web.get("/s/payments/DEC-1/").content.decode()
    assert "Refunds settle within one day" in con
    # The links list, the reasons, the superseded banner and the history sidebar.
    assert_hidden(con, leak)
    assert_hidden(old, leak)
    assert "Superseded." in old and f'replaced by\n  <span class="muted">{HIDDEN}' in old
    assert "DEC-1 &#x27;Retry refunds nightly&#x27; was superseded by " + HIDDEN in con
    assert "A record in a space you cannot see was edited" in con
    for page in ("/s/payments/CON-1/history/", "/s/payments/DEC-1/history/"):
        history = web.get(page).content.decode()
        assert_hidden(history, leak)
    for number in (1, 2, 3, 4):
        response = web.get(f"/s/payments/CON-1/history/{number}/")
        if response.status_code == 200:
            assert_hidden(response.content.decode(), leak, wording=False)

    # A member of both spaces still reads them.
    web = _web(client, leak["bridge"])
    con = web.get("/s/payments/CON-1/").content.decode()
    old = web.get("/s/payments/DEC-1/").content.decode()
    assert "Quokkasecret key rotation" in con and "/s/hiddenops/GRD-1/" in con
    assert "GRD-1 &#x27;Quokkasecret key rotation&#x27; was edited" in con
    assert "Wombatsecret payout plan" in old and "/s/hiddenops/DEC-4/" in old
    assert HIDDEN not in con.lower() and HIDDEN not in old.lower()


@pytest.mark.django_db
def test_review_queue_and_digest_email_are_worded_for_their_reader(client, leak):
    queue = _web(client, leak["payer"]).get("/review/").content.decode()
    assert "CON-1" in queue
    assert_hidden(queue, leak)

    ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks.send_delivery, "delay", lambda pk: ids.append(pk))
        with TestCase.captureOnCommitCallbacks(execute=True):
            tasks.plan_digests()
    for pk in ids:
        tasks.send_delivery.run(pk)
    [message] = [m for m in mail.outbox if m.to == [leak["payer"].email]]
    for part in (message.body, message.alternatives[0].content):
        assert "CON-1" in part
        assert_hidden(part.replace("&#x27;", "'"), leak)


# --- REST API, context API, agents.md ---------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    _, plain = make_token(user, scope=ApiToken.Scope.READ)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return api


@pytest.mark.django_db
def test_rest_api_names_no_hidden_record(leak):
    api = _api(leak["reader"])
    texts = []
    for record in (leak["con"], leak["old"]):
        for path in ("", "links/", "revisions/"):
            response = api.get(f"/api/v1/records/{record.pk}/{path}")
            assert response.status_code == 200
            texts.append(response.content.decode())
        revisions = api.get(f"/api/v1/records/{record.pk}/revisions/").json()["results"]
        for revision in revisions:
            response = api.get(f"/api/v1/records/{record.pk}/revisions/{revision['number']}/")
            texts.append(response.content.decode())
            if revision["number"] > 1:
                diff = f"/api/v1/records/{record.pk}/revisions/{revision['number']}/diff/"
                texts.append(api.get(diff + f"?against={revision['number'] - 1}").content.decode())
    texts.append(api.get("/api/v1/links/").content.decode())
    for text in texts:
        assert_hidden(text, leak, wording=False)
    # The revision messages that named the hidden records now say what they were.
    assert any(f"Linked: depends on {HIDDEN}" in text for text in texts)
    assert any(f"Superseded by {HIDDEN}" in text for text in texts)

    # CON-1's owner (payments only) verifies it: the answer lists the linked versions it saw.
    owner = APIClient()
    _, plain = make_token(leak["payer"], scope=ApiToken.Scope.READ_WRITE)
    owner.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = owner.post(f"/api/v1/records/{leak['con'].pk}/verify/", {"note": "ok"})
    assert response.status_code == 201
    assert response.json()["linked_versions"] == {"DEC-1": leak["old"].version + 1}
    assert_hidden(response.content.decode(), leak, wording=False)


@pytest.mark.django_db
def test_context_api_and_agents_md_name_hidden_records_only_to_their_members(leak):
    api = _api(leak["reader"])
    response = api.get("/api/v1/context/", {"q": "refunds settle retry", "spaces": "payments"})
    assert response.status_code == 200
    body = response.json()
    [con] = [item for item in body["items"] if item["key"] == "CON-1"]
    assert con["freshness"] == "suspect"
    assert "A record in a space you cannot see was edited" in con["freshness_reasons"]
    assert f"DEC-1 'Retry refunds nightly' was superseded by {HIDDEN}" in con["freshness_reasons"]
    assert_hidden(response.content.decode(), leak)
    markdown = api.get(
        "/api/v1/context/", {"q": "refunds settle", "spaces": "payments", "format": "markdown"}
    )
    assert_hidden(markdown.content.decode(), leak)

    agents = api.get("/api/v1/context/agents.md", {"space": "payments"})
    assert agents.status_code == 200
    text = agents.content.decode()
    assert "CON-1" in text
    assert_hidden(text, leak)

    # A member of both spaces still reads them.
    api = _api(leak["bridge"])
    body = api.get("/api/v1/context/", {"q": "refunds settle", "spaces": "payments"}).json()
    [con] = [item for item in body["items"] if item["key"] == "CON-1"]
    assert "GRD-1 'Quokkasecret key rotation' was edited" in con["freshness_reasons"]
    assert "DEC-1 'Retry refunds nightly' was superseded by DEC-4" in con["freshness_reasons"]
    agents = api.get("/api/v1/context/agents.md", {"space": "payments"}).content.decode()
    assert "Quokkasecret" in agents


# --- MCP (official client over Streamable HTTP) -----------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mcp_tools_and_resources_name_no_hidden_record(live_mcp, leak):  # noqa: F811
    _, reader = make_token(leak["reader"])
    _, bridge = make_token(leak["bridge"])

    async def calls(plain):
        async with _http_client(live_mcp, plain) as client:
            texts = [
                _text(await client.call_tool("get_record", {"key": key, "space": "payments"}))
                for key in ("CON-1", "DEC-1")
            ]
            texts.append(
                _text(
                    await client.call_tool(
                        "search_context", {"query": "refunds settle retry", "space": "payments"}
                    )
                )
            )
            for key in ("CON-1", "DEC-1"):
                resource = await client.read_resource(f"contextkb://payments/{key}")
                texts.append(resource.contents[0].text)
            return texts

    hidden = asyncio.run(calls(reader))
    for text in hidden:
        assert_hidden(text, leak, wording=False)
    con, old, search, con_resource, old_resource = hidden
    assert "A record in a space you cannot see was edited" in con
    assert f"Superseded by {HIDDEN}" in old and f"Superseded by {HIDDEN}" in old_resource
    assert HIDDEN in search.lower() and HIDDEN in con_resource.lower()

    shown = asyncio.run(calls(bridge))
    assert "Quokkasecret key rotation" in shown[0]
    assert "Superseded by DEC-4 (Wombatsecret payout plan)" in shown[1]


# --- rows written before the references existed -----------------------------------------------


@pytest.mark.django_db
def test_reasons_and_revisions_written_before_the_fix_are_reworded_after_migrating(client, leak):
    import importlib

    from django.apps import apps as django_apps

    from apps.records.models import Revision, SuspectReason

    # Put the rows back the way the old code wrote them: messages naming keys and titles, no
    # references.
    for reason in SuspectReason.objects.filter(record=leak["con"]):
        old_details = {k: reason.details[k] for k in ("key", "version", "status")}
        SuspectReason.objects.filter(pk=reason.pk).update(details=old_details)
    for revision in Revision.objects.filter(record__in=[leak["con"], leak["old"]]):
        snapshot = revision.snapshot
        for link in snapshot.get("links", []):
            link.pop("target_id", None)
        Revision.objects.filter(pk=revision.pk).update(related_record=None, snapshot=snapshot)
    web = _web(client, leak["reader"])
    before = web.get("/s/payments/CON-1/").content.decode()
    assert "was superseded by DEC-4" in before

    for name, function in (
        ("0004_suspect_reason_references", "add_references"),
        ("0005_revision_related_record", "fill"),
    ):
        migration = importlib.import_module(f"apps.records.migrations.{name}")
        getattr(migration, function)(django_apps, None)

    for page in ("/s/payments/CON-1/", "/s/payments/DEC-1/", "/s/payments/CON-1/history/"):
        assert_hidden(web.get(page).content.decode(), leak)
    con = web.get("/s/payments/CON-1/").content.decode()
    assert "A record in a space you cannot see was edited" in con
    assert "DEC-1 &#x27;Retry refunds nightly&#x27; was superseded by " + HIDDEN in con
    bridge = _web(client, leak["bridge"]).get("/s/payments/CON-1/").content.decode()
    assert "GRD-1 &#x27;Quokkasecret key rotation&#x27; was edited" in bridge
    assert "superseded by DEC-4" in bridge

    # A message whose record could not be told apart stays hidden, even from members.
    linked = Revision.objects.get(record=leak["con"], message="Linked: depends on GRD-1")
    Revision.objects.filter(pk=linked.pk).update(related_record=None)
    history = _web(client, leak["bridge"]).get("/s/payments/CON-1/history/").content.decode()
    assert f"Linked: depends on {HIDDEN}" in history
