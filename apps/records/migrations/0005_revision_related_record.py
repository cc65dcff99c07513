"""Revisions remember the other record their message names (a link's other end, a successor),
and snapshot links the id of their target, so readers who cannot see that record are shown
"a record in a space you cannot see" instead of its key (records.selectors.present_revisions).
Existing rows are filled in from their messages and from the links as they are now."""

import re

import django.db.models.deletion
from django.db import migrations, models

# The messages records.services writes when a link or a supersede changes a record.
LINKED = re.compile(r"^(?:Linked|Unlinked): .* (\S+)$")
SUPERSEDED = re.compile(r"^(?:No longer )?[Ss]uperseded by (\S+)$")
BATCH = 500


def _resolver(apps):
    Record = apps.get_model("records", "Record")
    Link = apps.get_model("records", "Link")

    def resolve(record, key: str, *, outgoing: bool) -> int | None:
        """The record `key` names from `record`: the other end of one of its links, else the
        record with that key in its own space, else the only record anywhere with that key."""
        if outgoing:
            links = Link.objects.filter(source_id=record.pk, target__key=key)
            found = links.values_list("target_id", flat=True).first()
        else:
            links = Link.objects.filter(target_id=record.pk, source__key=key, type="supersedes")
            found = links.values_list("source_id", flat=True).first()
        if found is None:
            found = (
                Record.objects.filter(space_id=record.space_id, key=key)
                .values_list("pk", flat=True)
                .first()
            )
        if found is None:
            same_key = list(Record.objects.filter(key=key).values_list("pk", flat=True)[:2])
            found = same_key[0] if len(same_key) == 1 else None
        return found

    return resolve


def fill(apps, schema_editor):
    Revision = apps.get_model("records", "Revision")
    resolve = _resolver(apps)
    batch = []
    for revision in Revision.objects.select_related("record").iterator(chunk_size=BATCH):
        changed = False
        linked, superseded = LINKED.match(revision.message), SUPERSEDED.match(revision.message)
        if linked or superseded:
            key = (linked or superseded).group(1)
            revision.related_record_id = resolve(revision.record, key, outgoing=bool(linked))
            changed = revision.related_record_id is not None
        links = (revision.snapshot or {}).get("links") or []
        for link in links:
            if isinstance(link, dict) and "target_id" not in link and link.get("target"):
                link["target_id"] = resolve(revision.record, link["target"], outgoing=True)
                changed = True
        if changed:
            batch.append(revision)
        if len(batch) >= BATCH:
            Revision.objects.bulk_update(batch, ["related_record", "snapshot"])
            batch = []
    if batch:
        Revision.objects.bulk_update(batch, ["related_record", "snapshot"])


class Migration(migrations.Migration):
    dependencies = [("records", "0004_suspect_reason_references")]

    operations = [
        migrations.AddField(
            model_name="revision",
            name="related_record",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="records.record",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
