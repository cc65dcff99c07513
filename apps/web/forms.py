"""Forms of the web UI. They parse and shape input; the services validate and write."""

from __future__ import annotations

import secrets
from typing import cast

from django import forms

from apps.accounts.models import Membership, Space, Team, User
from apps.core.errors import InvalidInput
from apps.core.text import strip_invisible
from apps.records import anchors, owners, services
from apps.records import fields as record_fields
from apps.records.models import Link, Record

# The skeleton a new record's body starts from, per kind.
BODY_TEMPLATES: dict[str, str] = {
    Record.Kind.DECISION: (
        "## Context\n\nWhat is the situation, and what forces are at play?\n\n"
        "## Decision\n\nWhat we decided, in one or two sentences.\n\n"
        "## Consequences\n\nWhat becomes easier, and what becomes harder.\n\n"
        "## Alternatives\n\nWhat else we considered, and why we did not pick it.\n"
    ),
    Record.Kind.CONSTRAINT: (
        "## Rule\n\nWhat must always (or never) hold.\n\n"
        "## Rationale\n\nWhy this rule exists.\n\n"
        "## Scope\n\nWhere it applies, and where it does not.\n\n"
        "## How to check\n\nHow a reviewer or a test can tell that it holds.\n"
    ),
    Record.Kind.INTENT: (
        "## Problem\n\nWho has the problem, and what it costs them.\n\n"
        "## Outcome\n\nWhat is true when we have succeeded.\n\n"
        "## Non-goals\n\nWhat we are deliberately not doing.\n\n"
        "## Success signals\n\nHow we will know: numbers, feedback, behaviour.\n"
    ),
    Record.Kind.GUARDRAIL: (
        "## Rule for agents\n\nWhat an AI tool must (or must not) do here.\n\n"
        "## Why\n\nWhat goes wrong otherwise.\n\n"
        "## Escalate to\n\nWho to ask, or what to do, when the rule does not fit.\n"
    ),
}

MAX_TAG_CHARS = record_fields.BY_NAME["tags"].max_length
MAX_ANCHOR_CHARS = record_fields.BY_NAME["anchors"].max_length
_F = record_fields.BY_NAME

# Service field names that the form shows under another name.
FIELD_ALIASES = {f.name: f.form for f in record_fields.FIELDS if f.form != f.name}


def split_tags(text: str) -> list[str]:
    """Comma- or newline-separated tags, lower-cased and without repeats ("Events, events")."""
    tags: list[str] = []
    for part in (text or "").replace("\n", ",").split(","):
        tag = strip_invisible(part).strip().lower()  # as the service does (apps.core.text)
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def split_lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# A select's choices: (value, label), or (group label, [(value, label)]) for an <optgroup>.
Choices = list[tuple[str, str | list[tuple[str, str]]]]


def owner_choices(space: Space, record: Record | None = None) -> Choices:
    users = (
        User.objects.filter(memberships__space=space, is_active=True)
        .order_by("first_name", "last_name", "username")
        .distinct()
    )
    teams = Team.objects.order_by("name")
    choices: Choices = [("", "Unowned")]
    choices += [
        (owners.form_value(user_id=u.pk, team_id=None), f"{u.display_name} ({u.username})")
        for u in users
    ]
    # An owner who has left the space (or was deactivated) stays selectable, so editing anything
    # else neither fails nor silently makes the record unowned.
    current = (
        owners.form_value(user_id=record.owner_user_id, team_id=None) if record is not None else ""
    )
    if current and current not in dict(choices) and record and (former := record.owner_user):
        choices.append(
            (current, f"{former.display_name} ({former.username}) — no longer in this space")
        )
    team_choices = [(owners.form_value(user_id=None, team_id=t.pk), t.name) for t in teams]
    if team_choices:
        choices.append(("Teams", team_choices))
    return choices


class RecordForm(forms.Form):
    """Create or edit a record. `version` carries the version the editor started from."""

    title = forms.CharField(max_length=_F["title"].max_length)
    summary = forms.CharField(
        max_length=_F["summary"].max_length,
        required=False,
        help_text="One line: what someone needs to know if they read nothing else.",
    )
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 22, "class": "mono", "spellcheck": "true"}),
        help_text="Markdown. The preview shows exactly what readers will see.",
    )
    status = forms.ChoiceField(choices=[])
    owner = forms.ChoiceField(choices=[], required=False)
    tags = forms.CharField(
        required=False, help_text="Comma-separated, e.g. payments, ledger.", max_length=2000
    )
    anchors = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="One per line: code path globs (services/billing/**) or component names.",
        max_length=20000,
    )
    reversibility = forms.ChoiceField(
        choices=[("", "Not stated"), *Record.Reversibility.choices], required=False
    )
    impact = forms.ChoiceField(choices=[("", "Not stated"), *Record.Impact.choices], required=False)
    decided_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    deciders = forms.CharField(max_length=_F["deciders"].max_length, required=False)
    valid_until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: after this date the record becomes suspect.",
    )
    message = forms.CharField(
        max_length=300,
        required=False,
        label="Change note",
        help_text="Optional: why you changed it (shown in the history).",
    )
    version = forms.IntegerField(
        widget=forms.HiddenInput,
        required=False,
        min_value=1,
        error_messages=dict.fromkeys(
            ("required", "invalid", "min_value"),
            "This form lost track of the version you started from, so nothing was saved. "
            "Open the record again and redo your edit.",
        ),
    )

    # Which "create" form this is: the same form sent twice creates one record (a new token is
    # handed out with every fresh form; see apps.web.selectors.submitted_twice).
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, space: Space, kind: str, record: Record | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if record is None and not self.is_bound and not self.initial.get("submission"):
            self.initial["submission"] = secrets.token_urlsafe(16)
        self.space = space
        self.kind = kind
        self.record = record
        self.anchor_warnings: list[str] = []
        # Set when the secret scan refused the text: a space admin is offered "save anyway".
        self.secret_refused = False
        statuses = [c for c in Record.Status.choices if c[0] != Record.Status.SUPERSEDED]
        if record is not None and record.status == Record.Status.SUPERSEDED:
            # Superseded comes from a link; the editor cannot change it.
            del self.fields["status"]
        else:
            cast(forms.ChoiceField, self.fields["status"]).choices = statuses
        cast(forms.ChoiceField, self.fields["owner"]).choices = owner_choices(space, record)
        if kind != Record.Kind.DECISION:
            for name in record_fields.DECISION_ONLY_FIELDS:
                del self.fields[name]
        if record is None:
            del self.fields["version"]
            if not self.is_bound:
                # A new record starts with its title (not 15 Tabs through the navigation).
                self.fields["title"].widget.attrs["autofocus"] = True
        else:
            self.fields["version"].required = True
            del self.fields["submission"]

    def clean(self):
        data = super().clean()
        # The version is a hidden field: say what went wrong where the user can see it.
        if "version" in self.errors:
            message = self.errors.pop("version")[0]
            self.add_error(None, message)
        return data

    def clean_summary(self):
        summary = self.cleaned_data["summary"]
        if "\n" in summary or "\r" in summary:
            raise forms.ValidationError("The summary is one line.")
        return summary

    def clean_tags(self):
        text = self.cleaned_data.get("tags", "")
        tags = split_tags(text)
        if problem := services.tag_problem(tags):  # the services' rule, for every door
            raise forms.ValidationError(problem)
        too_long = [t for t in tags if len(t) > MAX_TAG_CHARS]
        if too_long:
            raise forms.ValidationError(
                f"A tag is at most {MAX_TAG_CHARS} characters; “{too_long[0][:30]}…” is longer."
            )
        if len(tags) > services.MAX_TAGS:
            raise forms.ValidationError(
                f"At most {services.MAX_TAGS} tags; this has {len(tags)}. Keep the ones people "
                "filter by."
            )
        return text

    def clean_anchors(self):
        """Each anchor checked by the one rule (apps.records.anchors.clean_anchor): what can never
        match is refused with a message, "/x" and "x\\y" come back normalised, and an anchor
        that matches every file is kept with a warning (`anchor_warnings`, shown after saving)."""
        text = self.cleaned_data.get("anchors", "")
        cleaned: list[str] = []
        self.anchor_warnings = []
        for anchor in split_lines(text):
            if len(anchor) > MAX_ANCHOR_CHARS:
                raise forms.ValidationError(
                    f"An anchor is at most {MAX_ANCHOR_CHARS} characters; "
                    f"“{anchor[:40]}…” is longer."
                )
            try:
                path, warning = anchors.clean_anchor(anchor)
            except anchors.AnchorRefused as exc:
                raise forms.ValidationError(str(exc)) from None
            if path not in cleaned:
                cleaned.append(path)
            if warning and warning not in self.anchor_warnings:
                self.anchor_warnings.append(warning)
        if len(cleaned) > services.MAX_ANCHORS:
            raise forms.ValidationError(
                f"At most {services.MAX_ANCHORS} anchors; this has {len(cleaned)}. "
                "A folder glob (services/billing/**) covers everything under it."
            )
        return "\n".join(cleaned)

    def clean_owner(self):
        try:
            return owners.from_form(self.cleaned_data.get("owner") or "")
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None

    def service_fields(self) -> dict:
        """The cleaned data as keyword arguments for record_create / changes for record_update."""
        data = self.cleaned_data
        owner = data.get("owner")
        owner_user, owner_team = owners.split(owner)
        out = {
            "title": data["title"],
            "summary": data.get("summary", ""),
            "body": (data.get("body") or "").replace("\r\n", "\n"),
            "owner_user": owner_user,
            "owner_team": owner_team,
            "tags": split_tags(data.get("tags", "")),
            "anchors": split_lines(data.get("anchors", "")),
            "valid_until": data.get("valid_until"),
        }
        if "status" in self.fields:
            out["status"] = data["status"]
        current = self._current_owner(self.record) if self.record is not None else None
        if (getattr(owner, "pk", None), type(owner)) == current:
            # Unchanged owner: not part of the change (a former member stays the owner until
            # someone picks another one).
            del out["owner_user"], out["owner_team"]
        if self.kind == Record.Kind.DECISION:
            out.update(
                reversibility=data.get("reversibility", ""),
                impact=data.get("impact", ""),
                decided_on=data.get("decided_on"),
                deciders=data.get("deciders", ""),
            )
        return out

    @staticmethod
    def _current_owner(record: Record) -> tuple[int | None, type | None]:
        if record.owner_user_id:
            return record.owner_user_id, User
        if record.owner_team_id:
            return record.owner_team_id, Team
        return None, type(None)

    def add_service_errors(self, details: dict) -> None:
        """Show a service's InvalidInput details next to the fields they name."""
        for name, messages in (details or {}).items():
            field = FIELD_ALIASES.get(name, name)
            for message in messages if isinstance(messages, list | tuple) else [messages]:
                self.add_error(field if field in self.fields else None, str(message))

    @staticmethod
    def initial_for(record: Record) -> dict:
        initial: dict = {}
        for spec in record_fields.FIELDS:
            if spec.kind == record_fields.OWNER:
                value = owners.form_value(
                    user_id=record.owner_user_id, team_id=record.owner_team_id
                )
            elif spec.kind == record_fields.LIST:
                value = spec.separator.join(getattr(record, spec.name))
            else:
                value = getattr(record, spec.name)
            initial[spec.form] = value
        return {**initial, "version": record.version}


# Links read from the other record's side ("is constrained by CON-3"), stored the other way round.
SYMMETRIC_LINKS = {Link.Type.RELATES_TO, Link.Type.CONFLICTS_WITH}
INVERSE_PREFIX = "inverse:"
LINK_TYPE_CHOICES = [
    ("This record…", list(Link.Type.choices)),
    (
        "…the other record",
        [
            (f"{INVERSE_PREFIX}{value}", f"is {Link.INVERSE_LABELS[value]}")
            for value, _ in Link.Type.choices
            if value not in SYMMETRIC_LINKS
        ],
    ),
]


class LinkForm(forms.Form):
    """Add a typed link between this record and another, found by key."""

    type = forms.ChoiceField(choices=LINK_TYPE_CHOICES, label="Link type")
    # The picker's result buttons send `target` (a key); pressing Enter in the search box sends
    # only `q`, which must then match one record.
    target = forms.CharField(max_length=200, required=False)
    q = forms.CharField(
        max_length=200,
        required=False,
        label="Record",
        help_text="Type a key (DEC-4) or words from the title, then pick one.",
    )
    note = forms.CharField(max_length=300, required=False)


class SpaceForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=60,
        required=False,
        help_text="Used in URLs. Lowercase letters, digits and hyphens; made from the name if empty.",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberForm(forms.Form):
    user = forms.CharField(
        max_length=254,
        label="Username or email",
        widget=forms.TextInput(attrs={"list": "people", "autocomplete": "off"}),
        help_text="Start typing to pick from the people who have an account.",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.EDITOR)

    def clean_user(self):
        value = self.cleaned_data["user"].strip()
        user = (
            User.objects.filter(is_active=True).filter(username__iexact=value).first()
            or User.objects.filter(is_active=True, email__iexact=value).first()
        )
        if user is None:
            raise forms.ValidationError(f"No active user called {value!r}.")
        return user


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
