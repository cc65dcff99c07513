"""Remove bidirectional controls and invisible characters from the short fields of records and
links saved before the services did it on save (apps.core.text). Bodies and history keep them.
"""

from django.db import migrations
from django.db.models import F, Func, Q, TextField, Value

from apps.core.text import INVISIBLE, strip_invisible

PATTERN = f"[{INVISIBLE}]"


def _clean_list(values):
    cleaned = []
    for value in values:
        value = strip_invisible(value).strip()
        if value and value not in cleaned:
            cleaned.append(value)
    return cleaned


def forwards(apps, schema_editor):
    Record = apps.get_model("records", "Record")
    Link = apps.get_model("records", "Link")

    def joined(field):
        return Func(F(field), Value(" "), function="array_to_string", output_field=TextField())

    affected = Record.objects.annotate(
        tags_text=joined("tags"), anchors_text=joined("anchors")
    ).filter(
        Q(title__regex=PATTERN)
        | Q(summary__regex=PATTERN)
        | Q(deciders__regex=PATTERN)
        | Q(tags_text__regex=PATTERN)
        | Q(anchors_text__regex=PATTERN)
    )
    for record in affected.iterator():
        # A title of nothing but such characters would become empty: keep a visible stand-in.
        record.title = strip_invisible(record.title).strip() or "(untitled)"
        record.summary = strip_invisible(record.summary).strip()
        record.deciders = strip_invisible(record.deciders).strip()
        record.tags = _clean_list(record.tags)
        record.anchors = _clean_list(record.anchors)
        record.save(update_fields=["title", "summary", "deciders", "tags", "anchors"])
    for link in Link.objects.filter(note__regex=PATTERN).iterator():
        link.note = strip_invisible(link.note).strip()
        link.save(update_fields=["note"])


class Migration(migrations.Migration):
    dependencies = [("records", "0005_revision_related_record")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
