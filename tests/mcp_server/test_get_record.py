"""MCP's get_record builds its record as a context bundle does (apps.retrieval.bundle.items):
the same freshness reasons for the same record, whichever tool an agent asks (issue 17: it once
built its own item and listed only the open suspect reasons)."""

import datetime as dt

import pytest
from django.utils import timezone

from apps.mcp_server import tools
from apps.records.models import Record
from apps.retrieval import services as retrieval_services
from tests.factories import make_record, make_token

pytestmark = pytest.mark.django_db


def _labels(markdown: str, key: str) -> list[str]:
    """The label lines (`> STALE: …`, `> Status: …`) of the record's block."""
    block = markdown[markdown.index(f'<record key="{key}"') :]
    block = block[: block.index("</record>")]
    return [line for line in block.splitlines() if line.startswith("> ")]


@pytest.mark.parametrize("state", ["stale", "suspect"])
def test_get_record_and_search_context_give_the_same_freshness_reasons(space, owner, state):
    record = make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never refund twice",
        summary="Check the ledger first.",
        anchors=["services/refunds/**"],
        status="accepted",
    )
    now = timezone.now()
    if state == "stale":  # its review date has passed
        Record.objects.filter(pk=record.pk).update(
            last_verified_at=now - dt.timedelta(days=200), next_review_at=now - dt.timedelta(days=3)
        )
        expected = "Its review was due on"
    else:  # its valid-until date has passed
        valid_until = timezone.localdate(now) - dt.timedelta(days=2)
        Record.objects.filter(pk=record.pk).update(valid_until=valid_until)
        expected = f"It was valid until {valid_until:%Y-%m-%d}."
    retrieval_services.embed_records(record_ids=[record.pk])
    token, _ = make_token(owner, spaces=[space])

    got, _ = tools.record_markdown(token, key=record.key, space=None)
    found, bundle = tools.search(
        token, query="", paths=["services/refunds/api.py"], max_tokens=4000, space=None
    )

    item = next(i for i in bundle["items"] if i["key"] == record.key)
    assert item["freshness"] == state
    assert any(reason.startswith(expected) for reason in item["freshness_reasons"])
    labels = _labels(got, record.key)
    assert labels == _labels(found, record.key)
    assert labels[0].startswith(f"> {state.upper()}: may no longer hold. {expected}")
    assert f'freshness="{state}"' in got
