"""Embeddings, the usage log and gaps: written by the retrieval services, looked at here."""

from django.contrib import admin

from apps.records.admin import ReadOnlyAdmin
from apps.retrieval.models import (
    ContextBundle,
    ContextRequest,
    ContextResult,
    Gap,
    RecordEmbedding,
    SpaceTextStats,
)


@admin.register(RecordEmbedding)
class RecordEmbeddingAdmin(ReadOnlyAdmin):
    list_display = ("record", "model_key", "dimensions", "updated_at")
    list_filter = ("model_key",)
    search_fields = ("record__key", "record__title")
    # The vector itself is 256+ floats: not worth a page of digits.
    exclude = ("vector",)


class ContextResultInline(admin.TabularInline):
    model = ContextResult
    fields = ("rank", "record", "score")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ContextRequest)
class ContextRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "operation", "tool", "user", "best_score", "is_gap")
    list_filter = ("channel", "operation", "is_gap")
    search_fields = ("query", "tool", "user__username")
    date_hierarchy = "created_at"
    inlines = [ContextResultInline]


@admin.register(ContextResult)
class ContextResultAdmin(ReadOnlyAdmin):
    list_display = ("request", "rank", "record", "score", "created_at")
    search_fields = ("record__key",)


@admin.register(Gap)
class GapAdmin(admin.ModelAdmin):
    """Gaps are triaged in the web UI (/spaces/<slug>/gaps/); the admin can correct a status."""

    list_display = ("query", "space", "source", "status", "count", "last_seen")
    list_filter = ("status", "source", "space")
    search_fields = ("query", "normalized")
    exclude = ("vector",)
    readonly_fields = ("count", "first_seen", "last_seen", "examples", "notes", "model_key")


@admin.register(SpaceTextStats)
class SpaceTextStatsAdmin(ReadOnlyAdmin):
    """Per space: how many records the BM25 statistics count and their total length. (The
    per-word tables, SpaceTerm and TermPosting, have composite primary keys, which Django's
    admin cannot show; they are derived from the records and rebuilt by reindexing.)"""

    list_display = ("space", "docs", "total_len")


@admin.register(ContextBundle)
class ContextBundleAdmin(ReadOnlyAdmin):
    """What a context request served (kept with its usage-log entry), for support questions."""

    list_display = ("id", "created_at", "served_format", "as_of", "request")
    list_filter = ("served_format",)
    search_fields = ("id",)
    date_hierarchy = "created_at"
    raw_id_fields = ("request",)
