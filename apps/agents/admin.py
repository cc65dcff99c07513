from django.contrib import admin

from apps.agents.models import Agent, AgentEvent, Escalation, Proposal


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Site admins register and edit agents here too; space admins use the Agents page."""

    list_display = ("name", "slug", "accountable", "last_seen_at", "disabled_at")
    search_fields = ("name", "slug", "purpose")
    filter_horizontal = ("spaces",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("last_seen_at", "created_at", "updated_at")

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # As apps.agents.services.agent_update: the agent's tokens follow its spaces.
        agent = form.instance
        for token in agent.tokens.all():
            token.spaces.set(agent.spaces.all())


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    """Read-only: proposals are accepted or rejected on the review page (through the services)."""

    list_display = ("id", "kind", "agent", "space", "record", "status", "created_at")
    list_filter = ("status", "kind")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    list_display = ("id", "agent", "guardrail", "contact_label", "notified_at", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


admin.site.register(AgentEvent)
