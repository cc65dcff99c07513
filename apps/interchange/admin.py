from django.contrib import admin

from apps.interchange.models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("uid", "space", "filename", "state", "dry_run", "created_by", "created_at")
    list_filter = ("state", "dry_run")
    search_fields = ("filename", "space__slug", "created_by__username")
    readonly_fields = [f.name for f in ImportJob._meta.fields if f.name != "archive"]
    exclude = ("archive",)

    def has_add_permission(self, request) -> bool:
        return False
