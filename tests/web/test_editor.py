"""The record editor: switching kind keeps what was typed, double submits make one record, tags and
anchors are checked with messages people can act on, and links explain what went wrong."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.records import services
from apps.records.models import Link, Record
from apps.web.forms import BODY_TEMPLATES
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _url(name, record=None, **kwargs):
    if record is not None:
        kwargs.update(slug=record.space.slug, key=record.key)
    return reverse(f"web:{name}", kwargs=kwargs)


def _new(**fields):
    data = {"kind": "decision", "title": "Use Kafka for events", "status": "draft", "body": ""}
    data.update(fields)
    return data


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_switching_kind_keeps_what_was_typed_and_swaps_an_untouched_template(as_user, owner, space):
    client = as_user(owner)
    response = client.post(
        _url("record_create", slug="payments"),
        {
            "kind": "constraint",  # the radio just picked
            "previous_kind": "decision",
            "switch_kind": "1",
            "title": "Amounts are integers",
            "summary": "No floats for money.",
            "tags": "money, ledger",
            "anchors": "services/ledger/**",
            "body": BODY_TEMPLATES["decision"].replace("\n", "\r\n"),  # as browsers send it
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert response.context["kind"] == "constraint"
    assert not form.is_bound  # nothing was validated or saved
    assert form["title"].value() == "Amounts are integers"
    assert form["tags"].value() == "money, ledger"
    assert form["anchors"].value() == "services/ledger/**"
    assert form["body"].value() == BODY_TEMPLATES["constraint"]
    assert "reversibility" not in form.fields  # decision-only fields are gone
    body = response.content.decode()
    assert "New constraint" in body and "Create constraint" in body
    assert not Record.objects.exists()


def test_switching_kind_keeps_a_body_the_user_wrote(as_user, owner, space):
    response = as_user(owner).post(
        _url("record_create", slug="payments"),
        {
            "kind": "guardrail",
            "previous_kind": "constraint",
            "switch_kind": "1",
            "title": "Agents never touch prod",
            "body": "## Rule\n\nMy own words.",
        },
    )
    assert response.context["form"]["body"].value() == "## Rule\n\nMy own words."
    assert _messages(response) == ["Kept your text; the guardrail template was not applied."]
    assert not Record.objects.exists()


def _token(client, url) -> str:
    """The submission token of a freshly opened create form, as the browser would send it."""
    return client.get(url).context["form"]["submission"].value()


def test_a_create_sent_twice_makes_one_record(as_user, owner, space):
    client = as_user(owner)
    url = _url("record_create", slug="payments")
    token = _token(client, url)
    first = client.post(url, _new(submission=token))
    second = client.post(url, _new(submission=token))
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == "/s/payments/DEC-1/"
    assert Record.objects.filter(space=space).count() == 1
    # Another form (a new token) with the same title is another record, even straight away.
    client.post(url, _new(submission=_token(client, url)))
    assert Record.objects.filter(space=space).count() == 2


def test_back_change_and_create_again_keeps_the_new_text(as_user, owner, space):
    """Back to the sent form, change the body, add an anchor, Create again within seconds: the
    new text is not dropped. The form comes back with it and says what happened; Create once
    more saves it as a new record."""
    client = as_user(owner)
    url = _url("record_create", slug="payments")
    token = _token(client, url)
    data = _new(kind="guardrail", title="Agents never touch prod", body="First text")
    assert client.post(url, {**data, "submission": token}).status_code == 302
    changed = {**data, "body": "Second text", "anchors": "deploy/**", "submission": token}
    response = client.post(url, changed)
    assert response.status_code == 200
    page = response.content.decode()
    assert "This form already created GRD-1" in page and "is not saved yet" in page
    form = response.context["form"]
    assert form["body"].value() == "Second text" and form["anchors"].value() == "deploy/**"
    assert Record.objects.filter(space=space).count() == 1
    assert Record.objects.get(key="GRD-1").body == "First text"
    fresh_token = form["submission"].value()
    assert fresh_token and fresh_token != token
    again = client.post(url, {**changed, "submission": fresh_token})
    assert again.status_code == 302 and again["Location"] == "/s/payments/GRD-2/"
    second = Record.objects.get(key="GRD-2")
    assert (second.body, second.anchors) == ("Second text", ["deploy/**"])


@pytest.mark.django_db(transaction=True)
def test_a_create_sent_twice_at_the_same_moment_makes_one_record(owner, space):
    """Two requests in flight at once (a double-click on a slow connection): each runs in its own
    thread with its own database connection; the second waits for the first and finds its record."""
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def submit():
        client = Client()
        client.force_login(owner, backend="django.contrib.auth.backends.ModelBackend")
        barrier.wait()
        try:
            statuses.append(
                client.post(
                    _url("record_create", slug="payments"), _new(submission="same-form")
                ).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [302, 302]
    assert Record.objects.filter(space=space, title="Use Kafka for events").count() == 1


def test_a_supersede_sent_twice_makes_one_successor(as_user, owner, space):
    old = make_record(space=space, actor=owner, title="Retry webhooks", status="accepted")
    client = as_user(owner)
    token = client.get(_url("record_supersede", old)).context["form"]["submission"].value()
    data = {
        "title": "Webhooks through an outbox",
        "status": "proposed",
        "body": "x",
        "submission": token,
    }
    first = client.post(_url("record_supersede", old), data)
    second = client.post(_url("record_supersede", old), data)
    assert first["Location"] == second["Location"] == "/s/payments/DEC-2/"
    assert Record.objects.filter(space=space).count() == 2
    assert Link.objects.filter(target=old, type="supersedes").count() == 1


def test_saving_the_same_edit_twice_is_not_a_conflict(as_user, owner, space):
    record = make_record(space=space, actor=owner, title="Old title", owner_user=owner)
    data = {
        "title": "New title",
        "summary": "",
        "body": record.body,
        "status": record.status,
        "owner": f"u:{owner.pk}",
        "tags": "",
        "anchors": "",
        "version": 1,
    }
    client = as_user(owner)
    assert client.post(_url("record_edit", record), data).status_code == 302
    again = client.post(_url("record_edit", record), data, follow=True)
    # The second send (same version, same content) finds its edit saved: no conflict page.
    assert again.status_code == 200 and "Resolve the conflict" not in again.content.decode()
    assert "DEC-1 saved." in _messages(again)
    record.refresh_from_db()
    assert (record.title, record.version) == ("New title", 2)
    # A different edit from the same old version is still a conflict.
    other = client.post(_url("record_edit", record), {**data, "title": "Another title"})
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tags", "ledger, <script>", "Tags use letters, digits, spaces and - _ . / : + # only"),
        ("tags", "ok, " + "x" * 51, "A tag is at most 50 characters"),
        ("tags", ", ".join(f"t{n}" for n in range(31)), "At most 30 tags; this has 31."),
        ("anchors", "../secrets/**", "“..” never matches"),
        ("anchors", "services/\tbilling", "contains a control character"),
        ("anchors", "a/" + "b" * 300, "An anchor is at most 300 characters"),
        ("anchors", "\n".join(f"s{n}/**" for n in range(51)), "At most 50 anchors; this has 51."),
        ("title", "x" * 201, "at most 200 characters"),
        ("body", "y" * (services.MAX_BODY_CHARS + 1), "limited to 200,000 characters"),
    ],
)
def test_bad_fields_get_a_message_next_to_them_and_nothing_is_created(
    as_user, owner, space, field, value, message
):
    response = as_user(owner).post(_url("record_create", slug="payments"), _new(**{field: value}))
    assert response.status_code == 200
    errors = response.context["form"].errors[field]
    assert any(message in error for error in errors), errors
    body = response.content.decode()
    assert 'class="field has-error"' in body or "has-error" in body
    assert not Record.objects.exists()


def test_fine_tags_and_anchors_are_kept_as_typed(as_user, owner, space):
    as_user(owner).post(
        _url("record_create", slug="payments"),
        _new(tags="Data platform, c++, team:payments, v1.2", anchors="web/**\n*.sql\nBilling API"),
    )
    record = Record.objects.get(space=space)
    assert record.tags == ["data platform", "c++", "team:payments", "v1.2"]
    assert record.anchors == ["web/**", "*.sql", "Billing API"]


def test_anchors_from_the_root_and_windows_paths_are_normalised(as_user, owner, space):
    """Anchors written from the root ("./web", "/web") or with Windows separators are stored as
    paths from the repository root, once each, so what the record page shows is what matches."""
    response = as_user(owner).post(
        _url("record_create", slug="payments"),
        _new(anchors="./web/**\n/docs/adr\nservices\\billing\\*.py\n/web/**"),
        follow=True,
    )
    record = Record.objects.get(space=space)
    assert record.anchors == ["web/**", "docs/adr", "services/billing/*.py"]
    assert not [m for m in _messages(response) if "every file" in m]


@pytest.mark.parametrize(
    "anchor",
    ["C:\\repo\\services\\billing", "D:/work/app", "\\\\fileserver\\share\\x", "~/src/app"],
)
def test_an_anchor_that_is_a_path_on_one_computer_is_refused(as_user, owner, space, anchor):
    response = as_user(owner).post(_url("record_create", slug="payments"), _new(anchors=anchor))
    assert response.status_code == 200
    assert "is a path on one computer" in " ".join(response.context["form"].errors["anchors"])
    assert not Record.objects.exists()


@pytest.mark.parametrize("anchor", ["**", "/", "**/*"])
def test_an_anchor_matching_every_file_is_saved_with_a_warning(as_user, owner, space, anchor):
    response = as_user(owner).post(
        _url("record_create", slug="payments"), _new(anchors=anchor), follow=True
    )
    record = Record.objects.get(space=space)
    assert record.anchors == ["**" if anchor == "/" else anchor]
    warnings = [m for m in _messages(response) if "matches every file in the repository" in m]
    assert len(warnings) == 1
    assert "matches every file" in response.content.decode()


def test_editor_suggests_the_tags_the_space_already_uses(as_user, owner, space):
    make_record(space=space, actor=owner, title="Tagged", tags=["ledger", "money"])
    body = as_user(owner).get(_url("record_create", slug="payments")).content.decode()
    assert 'data-add-tag="ledger"' in body and 'data-add-tag="money"' in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"type": "depends_on", "q": ""},
            "Type a key or words from the title, then pick a record.",
        ),
        ({"type": "depends_on", "q": "DEC-1"}, "DEC-1 cannot link to itself."),
        ({"type": "depends_on", "q": "nothing like this"}, "No record in Payments matches"),
        ({"type": "depends_on", "q": "ledger"}, "“ledger” matches several records"),
        ({"type": "owns", "q": "CON-1"}, "Link type: Select a valid choice."),
        (
            {"type": "relates_to", "target": "CON-1", "note": "n" * 301},
            "Note: Ensure this value has at most 300 characters",
        ),
    ],
)
def test_link_form_says_what_is_wrong_and_links_nothing(as_user, owner, space, data, message):
    decision = make_record(space=space, actor=owner, title="Ledger in PostgreSQL")
    make_record(space=space, actor=owner, kind="constraint", title="Ledger amounts are integers")
    make_record(space=space, actor=owner, kind="intent", title="Ledger is always correct")
    response = as_user(owner).post(_url("link_add", decision), data, follow=True)
    shown = _messages(response)
    assert len(shown) == 1 and message in shown[0], shown
    assert not Link.objects.exists()


def test_link_with_a_note_shows_the_note(as_user, owner, space):
    decision = make_record(space=space, actor=owner, title="Ledger in PostgreSQL")
    make_record(space=space, actor=owner, kind="constraint", title="Amounts are integers")
    client = as_user(owner)
    client.post(
        _url("link_add", decision),
        {"type": "depends_on", "target": "CON-1", "note": "floats lose pennies"},
    )
    page = client.get(_url("record_detail", decision)).content.decode()
    assert "floats lose pennies" in page
    assert Link.objects.get().note == "floats lose pennies"


def test_a_record_whose_owner_was_deactivated_can_still_be_edited(as_user, owner, teammate, space):
    """Until the hourly sweep hands the record to the admins, its owner is someone the owner
    picker no longer offers: editing anything else must neither fail nor unset the owner."""
    from apps.accounts.models import User

    record = make_record(space=space, actor=owner, title="Old title", owner_user=teammate)
    User.objects.filter(pk=teammate.pk).update(is_active=False)
    former = User.objects.get(pk=teammate.pk)
    client = as_user(owner)
    page = client.get(_url("record_edit", record)).content.decode()
    # The former owner is still the selected option, named as such (not silently "Unowned").
    assert (
        f'<option value="u:{former.pk}" selected>{former.display_name} ({former.username})'
        " — no longer in this space</option>"
    ) in page
    data = {
        "title": "New title",
        "status": record.status,
        "owner": f"u:{former.pk}",
        "body": record.body,
        "version": 1,
    }
    assert client.post(_url("record_edit", record), data).status_code == 302
    record.refresh_from_db()
    assert (record.title, record.owner_user_id) == ("New title", former.pk)
    # Handing it to a member works.
    client.post(_url("record_edit", record), {**data, "owner": f"u:{owner.pk}", "version": 2})
    record.refresh_from_db()
    assert record.owner_user == owner


STRIPE = "sk_live_" + "51HxQz2eZvKYlo2C8kDq7Zt"  # a fake in the real format, split on purpose
GITHUB = "ghp_" + "R2d2C3poBb8Yoda5Luke7Leia9Han1Chewie0"


def test_a_space_admin_offered_save_anyway_is_not_told_to_ask_a_space_admin(
    as_user, owner, owner_admin, space
):
    data = _new(body=f"Sandbox key: {STRIPE}")
    editor = as_user(owner).post(_url("record_create", slug="payments"), data)
    editor_text = editor.content.decode()
    assert "ask a space admin to save it anyway" in editor_text
    assert 'name="allow_secrets"' not in editor_text
    admin = as_user(owner_admin).post(_url("record_create", slug="payments"), data)
    admin_text = admin.content.decode()
    assert 'name="allow_secrets"' in admin_text  # the "Save anyway" box
    assert "ask a space admin" not in admin_text
    assert "as a space admin, save it anyway" in admin_text
    assert not Record.objects.exists()


def test_the_preview_masks_what_the_secret_scan_would_refuse(as_user, owner):
    body = f"## Setup\n\nUse the sandbox:\n\n`STRIPE_KEY={STRIPE}` and {GITHUB}\n"
    response = as_user(owner).post(reverse("web:preview"), {"body": body})
    html = response.content.decode()
    assert STRIPE not in html and GITHUB not in html
    assert STRIPE[8:] not in html and GITHUB[4:] not in html
    assert "Hidden in this preview:" in html
    assert "line 5 looks like a Stripe secret key" in html and "like a GitHub token" in html
    assert "<h2>Setup</h2>" in html  # the rest is rendered as usual


def test_a_body_over_the_limit_says_by_how_much(as_user, owner, space):
    body = "y" * (services.MAX_BODY_CHARS + 1234)
    response = as_user(owner).post(_url("record_create", slug="payments"), _new(body=body))
    assert "1,234 over" in " ".join(response.context["form"].errors["body"])
    assert 'data-max-chars="200000"' in response.content.decode()  # the live counter
    assert not Record.objects.exists()
