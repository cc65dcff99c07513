"""Record list filters (django-filter)."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, Q
from rest_framework.exceptions import ValidationError

from apps.records.models import Record


class RecordFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        # Text filters treat an empty value as "not given"; an empty date or flag is more likely
        # a script's unset variable than a wish for every record ever.
        if "updated_since" in self.data and not str(self.data["updated_since"]).strip():
            self.add_error("updated_since", "An ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z.")
        if "archived" in self.data and not str(self.data["archived"]).strip():
            self.add_error("archived", "Use true or false.")
        return cleaned


class RecordFilter(django_filters.FilterSet):
    space = django_filters.CharFilter(field_name="space__slug", help_text="Space slug.")
    kind = django_filters.MultipleChoiceFilter(choices=Record.Kind.choices)
    status = django_filters.MultipleChoiceFilter(choices=Record.Status.choices)
    freshness = django_filters.MultipleChoiceFilter(
        field_name="live_freshness", choices=Record.Freshness.choices
    )
    owner = django_filters.CharFilter(
        method="filter_owner", max_length=150, help_text="Owner's username or team slug."
    )
    tag = django_filters.CharFilter(
        method="filter_tag", max_length=50, help_text="Records carrying this tag."
    )
    anchor = django_filters.CharFilter(
        method="filter_anchor",
        max_length=500,
        help_text="A file path (`services/billing/api.py`); records whose anchors match it.",
    )
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=500,
        help_text='Full-text search (web search syntax: `"exact phrase" -word or`); '
        "results are ordered by relevance.",
    )
    updated_since = django_filters.IsoDateTimeFilter(
        method="filter_updated_since", help_text="ISO 8601 date-time."
    )
    archived = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_archived",
        help_text="true: only archived records; false (default): only active ones.",
    )

    class Meta:
        model = Record
        fields: list[str] = []
        form = RecordFilterForm

    def filter_owner(self, queryset, name, value):
        return queryset.filter(Q(owner_user__username=value) | Q(owner_team__slug=value))

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value.strip().lower()])

    def filter_anchor(self, queryset, name, value):
        return queryset.anchored_to(value)

    def filter_q(self, queryset, name, value):
        if not value.strip():
            return queryset
        query = SearchQuery(value, search_type="websearch", config="english")
        return (
            queryset.filter(search_vector=query)
            .annotate(rank=SearchRank(F("search_vector"), query))
            .order_by("-rank", "id")
        )

    def filter_updated_since(self, queryset, name, value):
        # PostgreSQL refuses UTC offsets beyond ±15:59; compare in UTC instead.
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError({"updated_since": ["Out of range."]}) from None
        return queryset.filter(updated_at__gte=value)

    def filter_archived(self, queryset, name, value):
        return queryset.filter(archived_at__isnull=value != "true")

    @property
    def qs(self):
        qs = super().qs
        if not self.form.cleaned_data.get("archived"):
            qs = qs.filter(archived_at__isnull=True)
        return qs
