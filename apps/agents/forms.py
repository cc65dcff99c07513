"""Forms of the Agents pages and the proposal review."""

from __future__ import annotations

from django import forms

from apps.accounts.models import Space, Team, User
from apps.agents.models import DEFAULT_SCOPES, DEFAULT_TOOLS, MCP_TOOLS, REST_SCOPES


def _lines(value: str) -> list[str]:
    return [line.strip() for line in (value or "").replace(",", "\n").splitlines() if line.strip()]


class AgentForm(forms.Form):
    name = forms.CharField(max_length=100)
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    accountable = forms.ModelChoiceField(
        queryset=User.objects.none(), help_text="The person who answers for what it does."
    )
    spaces = forms.ModelMultipleChoiceField(
        queryset=Space.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    path_globs = forms.CharField(
        label="Paths",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "services/billing/**"}),
        help_text="One glob a line (the anchors' syntax). Empty: every path.",
    )
    allowed_tools = forms.MultipleChoiceField(
        label="MCP tools",
        choices=[(t, t) for t in MCP_TOOLS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=DEFAULT_TOOLS,
    )
    allowed_scopes = forms.MultipleChoiceField(
        label="REST scopes (/api/v1/<scope>/)",
        choices=[(s, s) for s in REST_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=DEFAULT_SCOPES,
    )
    escalation_user = forms.ModelChoiceField(
        label="Escalation contact (person)", queryset=User.objects.none(), required=False
    )
    escalation_team = forms.ModelChoiceField(
        label="or team", queryset=Team.objects.all(), required=False
    )
    rate_limit = forms.CharField(
        max_length=30,
        required=False,
        help_text='Over all its tokens, e.g. "120/minute". Empty: the API\'s per-token rate.',
    )

    def __init__(self, *args, spaces, people, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spaces"].queryset = spaces
        self.fields["accountable"].queryset = people
        self.fields["escalation_user"].queryset = people

    def cleaned_for_service(self) -> dict:
        data = dict(self.cleaned_data)
        data["path_globs"] = _lines(data.get("path_globs", ""))
        data["spaces"] = list(data["spaces"])
        return data


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="agent token")
    expires_at = forms.DateTimeField(
        label="Expires",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: never (revoke it when the agent is retired).",
    )


class AcceptForm(forms.Form):
    """Edit then accept: the proposed fields, prefilled, plus the version the reviewer saw."""

    title = forms.CharField(max_length=200, required=False)
    summary = forms.CharField(max_length=300, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), required=False)
    seen_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    note = forms.CharField(
        label="Note to the agent", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )


class RejectForm(forms.Form):
    note = forms.CharField(
        label="Why not (the agent reads this back)",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )
