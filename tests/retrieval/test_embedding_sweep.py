"""The periodic sweep re-embeds a record whose vector is older than its last edit (the edit's own
embedding task was lost: a worker killed with it, a broker outage)."""

import pytest

from apps.records import services as records
from apps.retrieval import services, tasks
from apps.retrieval.models import RecordEmbedding

pytestmark = pytest.mark.django_db


def test_the_sweep_re_embeds_a_record_edited_after_its_vector_and_then_leaves_it(add, owner):
    record = add("Invoices are numbered per legal entity", body="Numbering restarts yearly.")
    before = RecordEmbedding.objects.get(record=record)
    # An edit whose embedding task never ran (in tests nothing is sent to a broker).
    records.record_update(
        record=record,
        actor=owner,
        expected_version=record.version,
        changes={"title": "Invoices are numbered globally"},
    )
    record.refresh_from_db()
    assert RecordEmbedding.objects.get(record=record).content_hash == before.content_hash

    assert tasks.embed_missing() == 1
    after = RecordEmbedding.objects.get(record=record)
    assert after.content_hash != before.content_hash
    assert after.updated_at >= record.updated_at
    # Nothing left for the next sweep.
    assert not services.records_needing_embedding(after.model_key).filter(pk=record.pk).exists()
    assert tasks.embed_missing() == 0


def test_an_edit_that_leaves_the_embedded_text_alone_is_not_picked_again(add, owner):
    record = add("Ledger exports are signed")
    records.record_update(
        record=record,
        actor=owner,
        expected_version=record.version,
        changes={"status": "deprecated"},
    )
    record.refresh_from_db()
    assert tasks.embed_missing() == 0  # the text is unchanged: no new vector is computed
    model_key = RecordEmbedding.objects.get(record=record).model_key
    assert not services.records_needing_embedding(model_key).filter(pk=record.pk).exists()
