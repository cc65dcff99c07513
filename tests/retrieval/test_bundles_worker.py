"""The real path of a bundle: request → background hand-off → broker → Celery worker → stored,
then fetched back byte for byte."""

import pytest
from rest_framework.test import APIClient

from apps.retrieval import services as retrieval_services
from apps.retrieval import usage
from apps.retrieval.models import ContextBundle
from tests.factories import make_record, make_token
from tests.retrieval.test_worker import REAL_DISPATCH, _wait_for, worker_queue  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_worker_stores_the_bundle_and_it_reads_back_exactly_as_served(
    worker_queue,  # noqa: F811
    space,
    owner,
    monkeypatch,
):
    monkeypatch.setattr(usage, "dispatch", REAL_DISPATCH)  # the real background hand-off
    record = make_record(
        space=space,
        actor=owner,
        title="Invoices retry from the job queue",
        summary='Backoff: 1, 5, 25 minutes. Ünïcödé, emoji 🙂 and "quotes".',
        status="accepted",
    )
    retrieval_services.embed_records(record_ids=[record.pk])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(owner)[1]}")

    served = client.get("/api/v1/context/", {"q": "invoices retry"})
    bundle_id = served["X-Context-Bundle"]
    served_md = client.get("/api/v1/context/", {"q": "invoices retry", "format": "markdown"})
    md_id = served_md["X-Context-Bundle"]

    assert _wait_for(lambda: ContextBundle.objects.filter(pk__in=[bundle_id, md_id]).count() == 2)
    assert client.get(f"/api/v1/context/bundles/{bundle_id}").content == served.content
    assert client.get(f"/api/v1/context/bundles/{md_id}").content == served_md.content
