from django import forms

from apps.accounts.models import User
from apps.chat.models import ChatPreference
from apps.records.policy import (
    DEFAULT_INTERVALS,
    MAX_INTERVAL_DAYS,
    MIN_INTERVAL_DAYS,
    POLICY_LABELS,
)


class PolicyForm(forms.Form):
    """A space's review intervals (days per kind / decision class) and its windows."""

    due_window_days = forms.IntegerField(
        min_value=0, max_value=365, label="Due: this long before the review date"
    )
    escalation_days = forms.IntegerField(
        min_value=0, max_value=3650, label="Escalate to admins after stale for"
    )

    def __init__(self, *args, space, **kwargs):
        initial = {
            "due_window_days": space.due_window_days,
            "escalation_days": space.escalation_days,
        }
        merged = {**DEFAULT_INTERVALS, **(space.review_policy or {})}
        super().__init__(*args, initial=initial, **kwargs)
        for key, label in POLICY_LABELS.items():
            name = "interval__" + key.replace(".", "__")
            self.fields[name] = forms.IntegerField(
                min_value=MIN_INTERVAL_DAYS,
                max_value=MAX_INTERVAL_DAYS,
                label=f"{label} (default {DEFAULT_INTERVALS[key]})",
                initial=merged[key],
            )

    def intervals(self) -> dict[str, int]:
        return {
            name.removeprefix("interval__").replace("__", "."): value
            for name, value in self.cleaned_data.items()
            if name.startswith("interval__")
        }


class DigestSettingsForm(forms.Form):
    digest_frequency = forms.ChoiceField(
        choices=User.DigestFrequency.choices, widget=forms.RadioSelect, label="Reminder emails"
    )
    # Where reminders go (apps.chat); left out of a POST, the stored choice stays.
    notify_by = forms.ChoiceField(
        choices=ChatPreference.NotifyBy.choices,
        widget=forms.RadioSelect,
        label="Send reminders by",
        required=False,
    )
    slack_user_id = forms.CharField(
        required=False,
        max_length=32,
        label="Your Slack member ID",
        help_text="Such as U0123ABCD (in Slack: your profile → ⋮ → Copy member ID). Slack "
        "messages mention you, and only you can press their buttons for your records.",
    )


class AssignOwnerForm(forms.Form):
    """Hand an orphaned record to a member of its space (the space admins' review queue)."""

    owner = forms.ModelChoiceField(queryset=User.objects.none())
    version = forms.IntegerField(min_value=1)

    def __init__(self, *args, space, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = User.objects.filter(
            memberships__space=space, is_active=True
        ).distinct()
