"""The Django admin: every contextkb model is there, every page opens, history is read-only."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from apps.records import services
from apps.records.models import Record, Revision
from tests.factories import UserFactory

PROJECT_APPS = {"accounts", "records", "retrieval", "reminders", "interchange", "audit", "core"}


def _project_models():
    # Models with composite primary keys (the BM25 word tables, derived from the records) cannot
    # be registered: Django's admin refuses them at start-up.
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in PROJECT_APPS and not m._meta.is_composite_pk
    ]


def test_every_contextkb_model_is_registered_in_the_admin():
    missing = [m._meta.label for m in _project_models() if m not in admin.site._registry]
    assert missing == []


@pytest.fixture
def superuser_client(client, db):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_every_changelist_and_change_page_opens_for_a_superuser(superuser_client, space, owner):
    record = services.record_create(
        space=space, kind="decision", title="Use Postgres", actor=owner, owner_user=owner
    )
    other = services.record_create(space=space, kind="constraint", title="Money", actor=owner)
    services.record_link(source=record, target=other, type="depends_on", actor=owner)
    services.record_verify(record=record, actor=owner)
    for model in _project_models():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = superuser_client.get(changelist)
        assert response.status_code == 200, changelist
        instance = model._default_manager.first()
        if instance is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
            assert superuser_client.get(change).status_code == 200, change


def test_revisions_cannot_be_changed_or_deleted_in_the_admin(superuser_client, space, owner):
    record = services.record_create(space=space, kind="decision", title="Original", actor=owner)
    revision = Revision.objects.get(record=record)
    url = reverse("admin:records_revision_change", args=[revision.pk])
    superuser_client.post(url, {"message": "rewritten history"})
    delete = reverse("admin:records_revision_delete", args=[revision.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    revision.refresh_from_db()
    assert revision.message != "rewritten history"
    # Records are not edited in the admin either: that would skip the revision.
    change = reverse("admin:records_record_change", args=[record.pk])
    superuser_client.post(change, {"title": "Edited behind the service's back"})
    assert Record.objects.get(pk=record.pk).title == "Original"
