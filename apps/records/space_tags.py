"""How many active records of a space carry each tag: the space page's tag filter reads it
instead of scanning every record of the space (`SELECT DISTINCT tags` took most of a web search
page at 100,000 records; bench/web_search.py).

The counts are kept by statement triggers on the records table (migration `records/0010`), in
the transaction of the write, so every way of writing records keeps them: the record services
(create, edit, archive, unarchive, restore), bulk loads and deletes alike. A tag whose count is
zero keeps its row (no delete racing a concurrent insert); readers ask for `records > 0`.
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
