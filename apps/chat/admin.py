from django.contrib import admin

from apps.chat.models import ChatChannel, ChatPreference


@admin.register(ChatChannel)
class ChatChannelAdmin(admin.ModelAdmin):
    """Channels are set by space admins on the space's Chat page; the secret is never shown."""

    list_display = ("space", "platform", "slack_channel", "updated_by", "updated_at")
    fields = ("space", "platform", "secret_hint", "slack_channel", "updated_by", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ChatPreference)
class ChatPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "notify_by", "slack_user_id")
    list_filter = ("notify_by",)
    search_fields = ("user__username", "slack_user_id")
