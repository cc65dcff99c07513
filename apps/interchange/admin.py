from django.contrib import admin

from apps.interchange.models import ImportBaseline, ImportJob, RepoLink, SourceId


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("uid", "space", "filename", "state", "dry_run", "created_by", "created_at")
    list_filter = ("state", "dry_run")
    search_fields = ("filename", "space__slug", "created_by__username")
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name != "archive"]
    exclude = ("archive",)

    def has_add_permission(self, request) -> bool:
        return False


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the app writes itself: shown, never added or changed here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SourceId)
class SourceIdAdmin(_ReadOnlyAdmin):
    """Front-matter ids the import matched records by (read-only: the import owns them)."""

    list_display = ("value", "record", "space")
    search_fields = ("value", "record__key", "space__slug")
    list_select_related = ("record", "space")
    readonly_fields = ("space", "record", "value")


@admin.register(ImportBaseline)
class ImportBaselineAdmin(_ReadOnlyAdmin):
    """What the last import left in each record (read-only). Deleting one makes the next import
    of that record's file win over edits made in the app, like --overwrite-edits."""

    list_display = ("record", "imported_at")
    search_fields = ("record__key", "record__space__slug")
    list_select_related = ("record",)
    readonly_fields = ("record", "fields", "facts", "imported_at")


@admin.register(RepoLink)
class RepoLinkAdmin(_ReadOnlyAdmin):
    """Spaces linked to repository folders (read-only: space admins set them on the sync page,
    where the credential is entered; it is never shown here either)."""

    list_display = ("space", "remote_url", "branch", "folder", "last_result", "last_sync_at")
    list_filter = ("last_result",)
    search_fields = ("space__slug", "remote_url")
    list_select_related = ("space",)
    exclude = ("credential_sealed",)
    readonly_fields = [f.name for f in RepoLink._meta.fields if f.name != "credential_sealed"]
