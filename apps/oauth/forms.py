"""The consent form: the toolkit's hidden authorization fields, plus spaces and write access."""

from __future__ import annotations

from django import forms
from oauth2_provider.forms import AllowForm

from apps.accounts.models import Space


class ConsentForm(AllowForm):
    spaces = forms.ModelMultipleChoiceField(
        queryset=Space.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Spaces it may use",
        help_text="Tick none for every space you can see, now and later.",
    )
    agent = forms.ModelChoiceField(
        queryset=Space.objects.none(),
        required=False,
        label="Connect it as a registered agent",
        help_text="Its calls are then that agent's: only the agent's spaces, paths and tools, "
        "read-only for records (it proposes instead), audited on the agent's page.",
        empty_label="No: act as me",
    )
    allow_write = forms.BooleanField(
        required=False,
        label="Let it propose and change records (write)",
        help_text="It can never do more than you can in a space.",
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spaces"].queryset = (
            Space.objects.visible_to(user).order_by("name") if user else Space.objects.none()
        )
        from apps.agents.models import Agent

        # The agents this person answers for (and that are not disabled).
        self.fields["agent"].queryset = (
            Agent.objects.filter(accountable=user, disabled_at__isnull=True).order_by("name")
            if user
            else Agent.objects.none()
        )
