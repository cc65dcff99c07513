"""Counts of a space's active records that the space page reads instead of scanning every
record of the space (each scan took most of a web search page at 100,000 records;
bench/web_search.py): how many carry each tag (the tag filter), and how many there are and how
many were never verified (the summary strip's totals).

The counts are kept by statement triggers on the records table (migrations `records/0010` and
`0011`), in the transaction of the write, so every way of writing records keeps them: the record
services (create, edit, archive, unarchive, restore), bulk loads and deletes alike. A tag whose
count is zero keeps its row (no delete racing a concurrent insert); readers ask for
`records > 0`.
"""

from __future__ import annotations

from django.db import models

from apps.accounts.models import Space


class SpaceTag(models.Model):
    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    tag = models.CharField(max_length=50)
    # Active records of the space with this tag (a record listing a tag twice counts twice).
    records = models.IntegerField(default=0)

    class Meta:
        app_label = "records"
        constraints = [
            models.UniqueConstraint(fields=["space", "tag"], name="space_tag_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tag} ({self.records})"


class SpaceTally(models.Model):
    """Active records of a space, and how many of them have never been verified. Only the
    time-independent part of the freshness counts: states that depend on the clock (due, stale,
    a passed valid-until date) are derived when read (apps.web.selectors.space_counts)."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="+")
    active = models.IntegerField(default=0)
    unverified = models.IntegerField(default=0)

    class Meta:
        app_label = "records"

    def __str__(self) -> str:
        return f"{self.active} active, {self.unverified} never verified"
