from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the log is evidence, so nobody edits or deletes it through the admin."""

    list_display = ("created_at", "kind", "actor", "username", "ip", "space", "message")
    list_filter = ("kind", "created_at")
    search_fields = ("username", "ip", "message", "request_id", "path")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "space")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
