"""A record's owner at every door: one place that formats and parses each external form, and
one rule for who may own a record.

A record is owned by a user or by a team (or no one). The doors write that owner differently,
and each form is public, so each stays as it is:

- the web editor's select: `u:<pk>` or `t:<pk>`;
- the REST API: `owner_user` = a username, `owner_team` = a team slug;
- exported front matter: the user's email, or `team:<slug>`;
- the import's re-import digests (stored): `user:<pk>` or `team:<pk>`.

Whichever door it came through, an owner is then checked by `problem` (inside the record
services): a deactivated user cannot become an owner, nor can someone outside the space.
"""

from __future__ import annotations

from apps.accounts.models import Membership, Space, Team, User
from apps.core.errors import InvalidInput

Owner = User | Team | None


def problem(user: User, *, space: Space, current_owner_id: int | None = None) -> str:
    """Why `user` cannot own a record of `space` ("" when they can). A deactivated user would
    get no reminders (and the next sweep would orphan the record again); one who already owns
    the record (`current_owner_id`) may stay while other fields are edited."""
    if not user.is_active and user.pk != current_owner_id:
        return f"{user} is deactivated and cannot own records."
    if not Membership.objects.filter(user=user, space=space).exists():
        return f"{user} is not a member of {space.name}."
    return ""


def split(owner: Owner) -> tuple[User | None, Team | None]:
    """(owner_user, owner_team) for the services."""
    return (
        owner if isinstance(owner, User) else None,
        owner if isinstance(owner, Team) else None,
    )


# --- web form: "u:<pk>" / "t:<pk>" ------------------------------------------------------------


def form_value(*, user_id: int | None, team_id: int | None) -> str:
    if user_id:
        return f"u:{user_id}"
    if team_id:
        return f"t:{team_id}"
    return ""


def from_form(value: str) -> Owner:
    """The editor's select value as a User or Team; raises InvalidInput for anything not in
    the list (an unknown or malformed value)."""
    if not value:
        return None
    prefix, _, pk = value.partition(":")
    obj: User | Team | None = None
    if pk.isdigit() and len(pk) < 12:
        if prefix == "u":
            obj = User.objects.filter(pk=pk).first()
        elif prefix == "t":
            obj = Team.objects.filter(pk=pk).first()
    if obj is None:
        raise InvalidInput("Pick an owner from the list.", details={"owner": ["Unknown owner."]})
    return obj


# --- REST API: username / team slug ------------------------------------------------------------


def from_api(data: dict) -> dict:
    """`data` with its `owner_user` (a username) and `owner_team` (a team slug) turned into
    objects; present but empty means no owner. Unknown ones are invalid input."""
    out = dict(data)
    if out.get("owner_user"):
        user = User.objects.filter(username=out["owner_user"]).first()
        if user is None:
            raise InvalidInput("Unknown owner.", details={"owner_user": ["No such user."]})
        out["owner_user"] = user
    elif "owner_user" in out:
        out["owner_user"] = None
    if out.get("owner_team"):
        team = Team.objects.filter(slug=out["owner_team"]).first()
        if team is None:
            raise InvalidInput("Unknown team.", details={"owner_team": ["No such team."]})
        out["owner_team"] = team
    elif "owner_team" in out:
        out["owner_team"] = None
    return out


# --- export / import front matter: email / "team:<slug>" ---------------------------------------


def export_value(record) -> str:
    if record.owner_user_id:
        return record.owner_user.email
    if record.owner_team_id:
        return f"team:{record.owner_team.slug}"
    return ""


def from_export(value, *, space: Space) -> tuple[User | None, Team | None, str]:
    """An exported `owner:` (an email or `team:<slug>`) → (user, team, problem); someone outside
    `space` comes back as a problem, not as the owner. (A deactivated user is refused by the
    services' `problem` check unless they already own the record, so a re-import keeps them.)"""
    text = str(value or "").strip()
    if not text:
        return None, None, ""
    if text.startswith("team:"):
        team = Team.objects.filter(slug=text[5:]).first()
        return (None, team, "") if team else (None, None, f"unknown team {text[5:]!r}")
    user = User.objects.filter(email__iexact=text).first()
    if user is None:
        return None, None, f"owner {text!r} has no account here"
    if not Membership.objects.filter(user=user, space=space).exists():
        return None, None, f"owner {text!r} is not a member of {space.name}"
    return user, None, ""


# --- re-import digests: "user:<pk>" / "team:<pk>" (stored in ImportBaseline) --------------------


def digest_value(*, user_id: int | None, team_id: int | None) -> str:
    if user_id:
        return f"user:{user_id}"
    if team_id:
        return f"team:{team_id}"
    return ""
