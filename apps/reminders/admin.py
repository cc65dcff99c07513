from django.contrib import admin

from apps.reminders.models import Delivery, DriftReport, HealthSnapshot, UsedLink


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Failed and stuck sends are visible here (filter by status)."""

    list_display = (
        "user",
        "kind",
        "period",
        "status",
        "attempts",
        "item_count",
        "claimed_at",
        "sent_at",
    )
    list_filter = ("status", "kind")
    search_fields = ("user__username", "user__email", "period")
    readonly_fields = ("created_at", "claimed_at", "sent_at", "message_id", "last_error")


@admin.register(DriftReport)
class DriftReportAdmin(admin.ModelAdmin):
    list_display = ("repository", "commit", "source", "suspect_count", "created_at")
    list_filter = ("source",)
    search_fields = ("repository", "commit")


@admin.register(HealthSnapshot)
class HealthSnapshotAdmin(admin.ModelAdmin):
    list_display = ("space", "day", "fresh", "due", "stale", "suspect", "orphaned")
    list_filter = ("space",)


@admin.register(UsedLink)
class UsedLinkAdmin(admin.ModelAdmin):
    list_display = ("action", "record_id", "user", "used_at")
