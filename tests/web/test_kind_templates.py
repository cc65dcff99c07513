"""A record kind without a body template (say, one just added to Record.Kind) gets an empty
editor, not a server error (issue 17: adding a kind must not 500 when one file is forgotten)."""

import pytest
from django.urls import reverse

from apps.web import forms

pytestmark = pytest.mark.django_db


def test_a_kind_without_a_template_opens_switches_and_saves(as_user, owner, space, monkeypatch):
    monkeypatch.delitem(forms.BODY_TEMPLATES, "intent")
    client = as_user(owner)
    url = reverse("web:record_create", kwargs={"slug": space.slug})

    opened = client.get(url, {"kind": "intent"})
    assert opened.status_code == 200
    assert opened.context["form"]["body"].value() == ""

    switched = client.post(
        url,
        {
            "kind": "intent",
            "previous_kind": "decision",
            "switch_kind": "1",
            "title": "Faster checkout",
            "body": forms.BODY_TEMPLATES["decision"],
        },
    )
    assert switched.status_code == 200
    assert switched.context["kind"] == "intent"
    assert switched.context["form"]["body"].value() == ""

    saved = client.post(
        url, {"kind": "intent", "title": "Faster checkout", "status": "draft", "body": "Why."}
    )
    assert saved.status_code == 302, saved.content[:500]
    assert space.records.get().key == "INT-1"
