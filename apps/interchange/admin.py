from django.contrib import admin

from apps.interchange.models import ImportBaseline, ImportJob, SourceId


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("uid", "space", "filename", "state", "dry_run", "created_by", "created_at")
    list_filter = ("state", "dry_run")
    search_fields = ("filename", "space__slug", "created_by__username")
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name != "archive"]
    exclude = ("archive",)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(SourceId)
class SourceIdAdmin(admin.ModelAdmin):
    """Front-matter ids the import matched records by (read-only: the import owns them)."""

    list_display = ("value", "record", "space")
    search_fields = ("value", "record__key", "space__slug")
    list_select_related = ("record", "space")
    readonly_fields = ("space", "record", "value")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportBaseline)
class ImportBaselineAdmin(admin.ModelAdmin):
    """What the last import left in each record (read-only). Deleting one makes the next import
    of that record's file win over edits made in the app, like --overwrite-edits."""

    list_display = ("record", "imported_at")
    search_fields = ("record__key", "record__space__slug")
    list_select_related = ("record",)
    readonly_fields = ("record", "fields", "imported_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
