from django import template

from apps.records.evidence import record_path

register = template.Library()


@register.filter
def record_url(record) -> str:
    return record_path(record)


@register.filter
def record_edit_url(record) -> str:
    return record_path(record).rstrip("/") + "/edit/"
