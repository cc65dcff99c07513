"""Every door that writes record text refuses credentials, naming the line, and changes nothing:
the REST API, the web form and the markdown import. A space admin can override (audited)."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput
from apps.interchange import services as interchange
from apps.interchange.sources import SourceFile
from apps.records.models import Record, Revision
from tests.factories import make_record, make_token

AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"  # assembled so no complete key sits in the source
BODY = f"## Rollout\n\nThe deploy user:\n\naws_access_key_id = {AWS_KEY_ID}\n"


def _api(client, token, method, path, payload, **headers):
    return getattr(client, method)(
        path,
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **headers,
    )


def test_the_api_refuses_a_key_in_a_new_or_edited_record(client, space, owner):
    _, token = make_token(owner, scope="read_write", spaces=[space])
    created = _api(
        client, token, "post", "/api/v1/records/",
        {"space": space.slug, "kind": "decision", "title": "Deploy access", "body": BODY},
    )  # fmt: skip
    assert created.status_code == 400
    error = created.json()["error"]
    assert error["code"] == "secret_detected"
    assert "line 5" in error["message"]
    assert error["details"]["body"] == ["Line 5: looks like an AWS access key id (AKIA…)."]
    assert AWS_KEY_ID not in created.content.decode()  # never echoed back
    assert not Record.objects.filter(space=space).exists()

    record = make_record(space=space, actor=owner, title="Deploy access")
    edited = _api(
        client, token, "patch", f"/api/v1/records/{record.pk}/", {"body": BODY},
        HTTP_IF_MATCH=f'"{record.version}"',
    )  # fmt: skip
    assert edited.status_code == 400
    assert edited.json()["error"]["code"] == "secret_detected"
    record.refresh_from_db()
    assert (record.version, record.body) == (1, "")
    assert Revision.objects.filter(record=record).count() == 1


def test_only_a_space_admin_can_override_through_the_api_and_it_is_audited(
    client, space, owner, admin_user
):
    payload = {
        "space": space.slug,
        "kind": "guardrail",
        "title": "Tutorial sandbox",
        "body": BODY,
        "allow_secrets": True,
    }
    _, editor_token = make_token(owner, scope="read_write", spaces=[space])
    refused = _api(client, editor_token, "post", "/api/v1/records/", payload)
    assert refused.status_code == 403
    assert not Record.objects.filter(space=space).exists()

    wrong_type = _api(
        client, editor_token, "post", "/api/v1/records/", {**payload, "allow_secrets": "yes"}
    )
    assert wrong_type.status_code == 400
    assert wrong_type.json()["error"]["details"]["allow_secrets"] == ["Must be true or false."]

    _, admin_token = make_token(admin_user, scope="read_write", spaces=[space])
    saved = _api(client, admin_token, "post", "/api/v1/records/", payload)
    assert saved.status_code == 201
    assert Record.objects.get(pk=saved.json()["id"]).body == BODY
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SECRET_OVERRIDE)
    assert (event.actor, event.space, event.path) == (admin_user, space, "/api/v1/records/")
    assert event.details == {"body": ["line 5: looks like an AWS access key id (AKIA…)"]}


def test_the_web_form_refuses_a_key_and_shows_the_line(client, space, owner):
    client.force_login(owner)
    response = client.post(
        f"/s/{space.slug}/new/?kind=decision",
        {"title": "Deploy access", "body": BODY, "status": "draft", "owner": ""},
    )
    assert response.status_code == 200  # the form again, with the error
    page = response.content.decode()
    assert "Line 5: looks like an AWS access key id (AKIA…)." in page
    assert not Record.objects.filter(space=space).exists()


def test_an_import_skips_a_file_with_a_key_and_says_which_line(space, owner):
    files = [
        SourceFile(path="docs/adr/0001-use-postgres.md", data=b"# Use Postgres\n\nIt is ACID.\n"),
        SourceFile(path="docs/adr/0002-deploy-user.md", data=("# Deploy user\n\n" + BODY).encode()),
    ]
    summary = interchange.import_files(space=space, files=files, actor=owner)
    assert [c["path"] for c in summary.created] == ["docs/adr/0001-use-postgres.md"]
    [skipped] = summary.skipped
    assert skipped["path"] == "docs/adr/0002-deploy-user.md"
    assert "looks like an AWS access key id" in skipped["reason"]
    assert "line" in skipped["reason"].lower()
    assert Record.objects.filter(space=space).count() == 1


def test_a_space_admin_can_save_anyway_from_the_web_form_and_it_is_audited(
    client, space, owner, admin_user
):
    form = {"title": "Tutorial sandbox", "body": BODY, "status": "draft", "owner": ""}
    url = f"/s/{space.slug}/new/?kind=guardrail"
    client.force_login(owner)
    refused = client.post(url, form).content.decode()
    assert "looks like it contains a credential on line 5" in refused
    assert 'name="allow_secrets"' not in refused  # editors ask an admin
    assert client.post(url, {**form, "allow_secrets": "1"}).status_code == 403
    assert not Record.objects.filter(space=space).exists()

    client.force_login(admin_user)
    offered = client.post(url, form).content.decode()
    assert 'name="allow_secrets"' in offered
    saved = client.post(url, {**form, "allow_secrets": "1"})
    assert saved.status_code == 302
    record = Record.objects.get(space=space)
    assert record.body == BODY.strip()  # the form trims the trailing newline
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SECRET_OVERRIDE)
    assert (event.actor, event.space, event.path) == (admin_user, space, f"/s/{space.slug}/new/")

    # Editing it later: the accepted lines do not block other changes; new credentials do.
    client.force_login(owner)
    edit = f"/s/{space.slug}/{record.key}/edit/"
    renamed = client.post(edit, {**form, "title": "Tutorial sandbox (v2)", "version": 1})
    assert renamed.status_code == 302
    another = BODY + "\nsecondary_key_id = AKIA" + "Q3V7WZ5R2TXYK4LM\n"
    again = client.post(edit, {**form, "body": another, "version": 2})
    assert "looks like it contains a credential on line 7" in again.content.decode()
    assert "line 5" not in again.content.decode()  # accepted before, not flagged again
    record.refresh_from_db()
    assert (record.version, record.title) == (2, "Tutorial sandbox (v2)")


def test_a_gap_an_ai_tool_reports_may_not_carry_a_credential(client, space, owner):
    """Gaps are shown to the space (and become record titles): the API and MCP report_gap call
    the same service, which refuses credentials in the question or the note."""
    from apps.retrieval import services as retrieval
    from apps.retrieval.models import Gap

    _, token = make_token(owner, spaces=[space])
    refused = client.post(
        "/api/v1/context/gaps/",
        {"query": "How do we rotate keys?", "note": f"tried key {AWS_KEY_ID}", "space": space.slug},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "secret_detected"
    assert error["details"] == {"note": ["Line 1: looks like an AWS access key id (AKIA…)."]}
    with pytest.raises(InvalidInput, match="query looks like it contains a credential"):
        retrieval.gap_report(principal=owner, query=f"is {AWS_KEY_ID} still valid?", space=space)
    assert not Gap.objects.exists()
    retrieval.gap_report(principal=owner, query="How do we rotate keys?", space=space)
    assert Gap.objects.count() == 1
