"""Who may do what in the web UI, checked on the server for every write: the owner (an editor who
owns the record), a teammate (another editor), a viewer, a space admin and an outsider. A refused
write answers 403 (member without the role) or 404 (not a member) and changes nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import Membership
from apps.records import services
from apps.records.models import Link, Record, Revision, Verification
from tests.factories import UserFactory, make_record

pytestmark = pytest.mark.django_db

ROLES = ["owner", "teammate", "viewer", "admin_user", "outsider"]


@pytest.fixture
def world(space, owner, teammate, viewer, admin_user, outsider):
    decision = make_record(
        space=space,
        actor=owner,
        title="Ledger in PostgreSQL",
        status="accepted",
        owner_user=owner,
    )
    constraint = make_record(space=space, actor=owner, kind="constraint", title="Integer amounts")
    link = services.record_link(source=decision, target=constraint, type="depends_on", actor=owner)
    newcomer = UserFactory(username="newcomer")
    return {"decision": decision, "constraint": constraint, "link": link, "newcomer": newcomer}


def _state(space):
    """Everything a write could change, to compare before and after a refused one."""
    return (
        list(Record.objects.order_by("pk").values_list("pk", "version", "status", "archived_at")),
        Link.objects.count(),
        Revision.objects.count(),
        Verification.objects.count(),
        sorted(Membership.objects.filter(space=space).values_list("user__username", "role")),
    )


def _writes(world):
    d, link, newcomer = world["decision"], world["link"], world["newcomer"]
    r = {"slug": "payments", "key": d.key}
    edit = {"title": "Changed", "status": "accepted", "version": d.version, "body": "x"}
    return {
        "create": (
            reverse("web:record_create", kwargs={"slug": "payments"}),
            {"title": "New", "status": "draft"},
        ),
        "edit": (reverse("web:record_edit", kwargs=r), edit),
        "supersede": (reverse("web:record_supersede", kwargs=r), {**edit, "title": "Next"}),
        "link": (
            reverse("web:link_add", kwargs=r),
            {"type": "relates_to", "target": world["constraint"].key},
        ),
        "unlink": (reverse("web:link_remove", kwargs={**r, "link_id": link.pk}), {}),
        "archive": (reverse("web:record_archive", kwargs=r), {}),
        "restore": (
            reverse("web:revision_restore", kwargs={**r, "number": 1}),
            {"version": d.version},
        ),
        "verify": (reverse("web:record_verify", kwargs=r), {"outcome": "still_true"}),
        "needs_update": (reverse("web:record_verify", kwargs=r), {"outcome": "needs_update"}),
        "add_member": (
            reverse("web:space_members", kwargs={"slug": "payments"}),
            {"user": newcomer.username, "role": "viewer"},
        ),
        "change_role": (
            reverse("web:member_role", kwargs={"slug": "payments", "user_id": 0}),
            {"role": "admin"},
        ),
        "remove_member": (
            reverse("web:member_remove", kwargs={"slug": "payments", "user_id": 0}),
            {},
        ),
    }


# (action, who may) — everyone else is refused.
ALLOWED = {
    "create": {"owner", "teammate", "admin_user"},
    "edit": {"owner", "teammate", "admin_user"},
    "supersede": {"owner", "teammate", "admin_user"},
    "link": {"owner", "teammate", "admin_user"},
    "unlink": {"owner", "teammate", "admin_user"},
    "archive": {"owner", "teammate", "admin_user"},
    "restore": {"owner", "teammate", "admin_user"},
    "verify": {"owner", "admin_user"},
    "needs_update": {"owner", "admin_user"},
    "add_member": {"admin_user"},
    "change_role": {"admin_user"},
    "remove_member": {"admin_user"},
}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("who", ROLES)
def test_every_write_checks_the_role_on_the_server(request, as_user, space, world, action, who):
    user = request.getfixturevalue(who)
    url, data = _writes(world)[action]
    # Role changes and removals act on the viewer.
    url = url.replace("/0/", f"/{request.getfixturevalue('viewer').pk}/")
    before = _state(space)
    response = as_user(user).post(url, data)
    if who in ALLOWED[action]:
        assert response.status_code == 302, response.content.decode()[:500]
        assert _state(space) != before
    else:
        expected = 404 if who == "outsider" else 403
        assert response.status_code == expected
        assert _state(space) == before
        body = response.content.decode()
        # The site's own error page, never a bare one; an outsider learns nothing about the space.
        assert 'class="topbar"' in body
        if who == "outsider":
            assert "Ledger in PostgreSQL" not in body and "Payments" not in body


@pytest.mark.parametrize("who", ROLES)
def test_pages_show_only_the_buttons_the_role_can_use(request, as_user, world, who):
    user = request.getfixturevalue(who)
    client = as_user(user)
    decision = world["decision"]
    url = reverse("web:record_detail", kwargs={"slug": "payments", "key": decision.key})
    response = client.get(url)
    if who == "outsider":
        assert response.status_code == 404
        return
    body = response.content.decode()
    can_edit = who in ALLOWED["edit"]
    assert ("Supersede with new record…" in body) == can_edit
    assert ('name="q" id="link-q"' in body) == can_edit
    assert ("✓ Still true" in body) == (who in ALLOWED["verify"])
    members = client.get(reverse("web:space_members", kwargs={"slug": "payments"}))
    assert ("Add member" in members.content.decode()) == (who in ALLOWED["add_member"])
    history = client.get(
        reverse("web:record_history", kwargs={"slug": "payments", "key": decision.key})
    )
    assert ('form="restore-' in history.content.decode()) == can_edit


def test_add_member_suggests_people_with_accounts_to_admins_only(as_user, world, owner, admin_user):
    url = reverse("web:space_members", kwargs={"slug": "payments"})
    page = as_user(admin_user).get(url).content.decode()
    people = page[page.index('<datalist id="people">') : page.index("</datalist>")]
    assert 'value="newcomer"' in people  # has an account, not a member yet
    assert 'value="owner"' not in people  # already a member
    # Editors cannot add anyone, so they are not shown the list of accounts either.
    assert '<datalist id="people">' not in as_user(owner).get(url).content.decode()
