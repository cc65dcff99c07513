from django.contrib import admin, messages
from django.db import transaction
from django.template.defaultfilters import truncatechars

from apps.reminders import services
from apps.reminders.models import Delivery, DriftReport, HealthSnapshot, UsedLink


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Every digest and escalation email and chat message: failed and stuck sends show here
    (filter by status), with the last error, and can be sent again."""

    list_display = (
        "user",
        "kind",
        "channel",
        "space",
        "period",
        "status",
        "attempts",
        "item_count",
        "claimed_at",
        "sent_at",
        "error",
    )
    list_filter = ("status", "kind", "channel")
    search_fields = ("user__username", "user__email", "period")
    readonly_fields = (
        "user",
        "kind",
        "channel",
        "space",
        "period",
        "status",
        "attempts",
        "item_count",
        "created_at",
        "claimed_at",
        "sent_at",
        "message_id",
        "last_error",
    )
    list_select_related = ("user", "space")
    actions = ["send_again"]

    @admin.display(description="Last error")
    def error(self, obj: Delivery) -> str:
        return truncatechars(obj.last_error, 80)

    def has_add_permission(self, request) -> bool:
        return False  # rows are planned by the beat task, one per user and period

    @admin.action(description="Send again (failed or given-up deliveries only)")
    def send_again(self, request, queryset):
        from apps.reminders.tasks import send_delivery

        ids = services.delivery_retry(ids=list(queryset.values_list("pk", flat=True)))
        for pk in ids:
            transaction.on_commit(lambda pk=pk: send_delivery.delay(pk))
        skipped = queryset.count() - len(ids)
        self.message_user(
            request,
            f"{len(ids)} delivery(ies) queued to send again"
            + (f"; {skipped} left alone (not failed)." if skipped else "."),
            messages.SUCCESS if ids else messages.WARNING,
        )


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
