"""Give existing linked-record suspect reasons the references their text is rebuilt from for
viewers who cannot see the record they name (records.selectors.reason_text): the subject
("KEY 'title'"), what happened ("was edited") and, for "was superseded by KEY", the successor."""

import re

from django.db import migrations

MESSAGE = re.compile(r"""^(\S+ (?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")) (was .*)$""", re.S)
SUPERSEDED_BY = re.compile(r"^was superseded by (\S+)$")


def add_references(apps, schema_editor):
    SuspectReason = apps.get_model("records", "SuspectReason")
    Link = apps.get_model("records", "Link")
    reasons = SuspectReason.objects.filter(cause="linked_changed").exclude(details__has_key="why")
    for reason in reasons.iterator(chunk_size=500):
        details = dict(reason.details or {})
        match = MESSAGE.match(reason.message)
        if match:
            details["subject"], details["why"] = match.group(1), match.group(2)
        by = SUPERSEDED_BY.match(details.get("why", ""))
        if by:
            details["why"] = "was superseded"
            successor = (
                Link.objects.filter(
                    target_id=reason.cause_record_id, type="supersedes", source__key=by.group(1)
                )
                .values_list("source_id", flat=True)
                .first()
            )
            if successor is not None:
                details.update({"by": successor, "by_key": by.group(1)})
            else:
                # The link is gone, so nothing tells who may see that key: drop it.
                reason.message = f"{details['subject']} was superseded"
        if not match:
            # A truncated message: the text is rebuilt from the key and status alone.
            details["why"] = {
                "superseded": "was superseded",
                "deprecated": "was deprecated",
                "rejected": "was rejected",
            }.get(details.get("status"), "was changed")
        SuspectReason.objects.filter(pk=reason.pk).update(details=details, message=reason.message)


class Migration(migrations.Migration):
    dependencies = [("records", "0003_valid_until_index")]

    operations = [migrations.RunPython(add_references, migrations.RunPython.noop)]
