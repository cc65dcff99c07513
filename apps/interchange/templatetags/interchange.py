"""`{% imported_from record %}`: what a record's file said that has no record field (import
metadata: the status as written, an unstated status, where its date came from)."""

from django import template

from apps.interchange.models import ImportBaseline

register = template.Library()


@register.inclusion_tag("interchange/partials/imported_from.html")
def imported_from(record) -> dict:
    # Records that never came from a file cost no query.
    if not record.source_path:
        return {"facts": None}
    facts = (
        ImportBaseline.objects.filter(record_id=record.pk).values_list("facts", flat=True).first()
    )
    return {"facts": facts or None, "path": record.source_path}
