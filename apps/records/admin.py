from django.contrib import admin

from apps.records.models import (
    CreateSubmission,
    Link,
    Record,
    RecordKeyCounter,
    Revision,
    SuspectReason,
    Verification,
)
from apps.records.space_tags import SpaceTag, SpaceTally


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the services only; the admin can look, not touch."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = (
        "key",
        "title",
        "space",
        "kind",
        "status",
        "freshness",
        "owner_user",
        "archived_at",
    )
    list_filter = ("space", "kind", "status", "freshness")
    search_fields = ("key", "title", "summary")
    # Content changes go through the web UI or API so they get revisions; the admin is for looking.
    readonly_fields = [f.name for f in Record._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Link)
class LinkAdmin(ReadOnlyAdmin):
    list_display = ("source", "type", "target", "created_at")
    list_filter = ("type",)


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    list_display = ("record", "number", "version", "action", "author", "created_at")
    list_filter = ("action",)


@admin.register(Verification)
class VerificationAdmin(ReadOnlyAdmin):
    list_display = ("record", "outcome", "actor", "record_version", "created_at")


@admin.register(SuspectReason)
class SuspectReasonAdmin(ReadOnlyAdmin):
    list_display = ("record", "cause", "message", "created_at", "resolved_at")
    list_filter = ("cause",)


@admin.register(RecordKeyCounter)
class RecordKeyCounterAdmin(ReadOnlyAdmin):
    """The last key number handed out per space and kind (DEC-12 → 12)."""

    list_display = ("space", "kind", "last_number")
    list_filter = ("kind",)


@admin.register(CreateSubmission)
class CreateSubmissionAdmin(ReadOnlyAdmin):
    """Which sent "create" form made which record (a resent form lands on that record)."""

    list_display = ("record", "user", "created_at")


@admin.register(SpaceTag)
class SpaceTagAdmin(ReadOnlyAdmin):
    """Active records per tag and space, kept by the database's triggers (the tag filter)."""

    list_display = ("space", "tag", "records")
    search_fields = ("tag",)


@admin.register(SpaceTally)
class SpaceTallyAdmin(ReadOnlyAdmin):
    """Active and never-verified records per space, kept by the database's triggers."""

    list_display = ("space", "active", "unverified")
