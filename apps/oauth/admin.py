from django.contrib import admin

from apps.oauth.models import Connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """OAuth connections, read-only: revoke one through its API token."""

    list_display = ["application", "user", "api_token", "created_at"]
    list_select_related = ["application", "user", "api_token"]
    search_fields = ["user__username", "application__name", "application__client_id"]
    readonly_fields = ["application", "user", "api_token", "token_family", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
