import pytest
from django.core.management import call_command

from apps.records.models import Link, Record


@pytest.mark.django_db
def test_seed_demo_creates_linked_records_of_every_kind_once(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    assert "demo / contextkb-demo" in first
    assert "nothing changed" in second
    assert Record.objects.count() == 12
    assert set(Record.objects.values_list("kind", flat=True)) == {
        "decision",
        "constraint",
        "intent",
        "guardrail",
    }
    assert Link.objects.count() == 9
    superseded = Record.objects.get(status="superseded")
    assert superseded.incoming_links.get(type="supersedes").source.title.startswith(
        "Deliver webhooks"
    )
    assert {"fresh", "stale"} <= set(Record.objects.values_list("freshness", flat=True))
