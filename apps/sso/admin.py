from django.contrib import admin

from apps.sso.models import GroupRoleMapping, RoleGrant


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(admin.ModelAdmin):
    list_display = ("group", "space", "role", "created_at")
    list_filter = ("role", "space")
    search_fields = ("group", "space__name", "space__slug")
    autocomplete_fields = ("space",)


@admin.register(RoleGrant)
class RoleGrantAdmin(admin.ModelAdmin):
    """What SSO granted (read-only: it is rewritten at each sign-in)."""

    list_display = ("user", "space", "role", "previous_role", "groups", "updated_at")
    list_filter = ("role", "space")
    search_fields = ("user__username", "space__slug")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
