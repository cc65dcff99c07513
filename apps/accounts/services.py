"""Writes for spaces, memberships and API tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Space, User
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from apps.core.text import strip_invisible


@transaction.atomic
def space_create(*, name: str, slug: str = "", description: str = "", actor: User) -> Space:
    """Create a space; its creator becomes its admin."""
    creator = access.user_of(actor)
    if creator is None:
        raise Forbidden("Sign in to create a space.")
    name = strip_invisible(name or "").strip()  # as record titles (apps.core.text)
    slug = (slug or slugify(name)).strip()
    errors = {}
    if not name:
        errors["name"] = ["A name is required."]
    elif len(name) > 120:
        errors["name"] = ["At most 120 characters."]
    if not slug or slug != slugify(slug) or len(slug) > 60:
        errors["slug"] = ["Use lowercase letters, digits and hyphens (at most 60)."]
    if errors:
        raise InvalidInput("The space is not valid.", details=errors)
    if Space.objects.filter(slug=slug).exists():
        raise Conflict(
            f"A space with the slug {slug!r} already exists.", details={"slug": ["Taken."]}
        )
    try:
        with transaction.atomic():
            space = Space.objects.create(name=name, slug=slug, description=description or "")
    except IntegrityError:
        raise Conflict(f"A space with the slug {slug!r} already exists.") from None
    Membership.objects.create(user=creator, space=space, role=Membership.Role.ADMIN)
    return space


@transaction.atomic
def space_update(
    *, space: Space, actor, name: str | None = None, description: str | None = None
) -> Space:
    """Rename a space or change its description (space admins only)."""
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_admin(actor, space):
        raise Forbidden(f"Only admins of {space.name} can change it.")
    space = Space.objects.select_for_update().get(pk=space.pk)
    if name is not None:
        name = strip_invisible(name).strip()
        if not name or len(name) > 120:
            raise InvalidInput(
                "The space is not valid.", details={"name": ["1 to 120 characters."]}
            )
        space.name = name
    if description is not None:
        space.description = description
    space.save(update_fields=["name", "description"])
    return space


def _require_admin(actor, space: Space) -> None:
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_admin(actor, space):
        raise Forbidden(f"Only admins of {space.name} can manage its members.")


@transaction.atomic
def membership_set(*, space: Space, user: User, role: str, actor) -> Membership:
    """Add a user to a space or change their role (admins only)."""
    _require_admin(actor, space)
    if role not in Membership.Role.values:
        raise InvalidInput(f"Unknown role {role!r}.", details={"role": ["Invalid role."]})
    if not user.is_active:
        raise InvalidInput(f"{user} is deactivated.", details={"user": ["Inactive user."]})
    membership, created = Membership.objects.select_for_update().get_or_create(
        user=user, space=space, defaults={"role": role}
    )
    if not created and membership.role != role:
        _refuse_removing_last_admin(space, membership, new_role=role)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def _refuse_removing_last_admin(
    space: Space, membership: Membership, *, new_role: str | None
) -> None:
    if membership.role == Membership.Role.ADMIN and new_role != Membership.Role.ADMIN:
        admins = Membership.objects.filter(space=space, role=Membership.Role.ADMIN).count()
        if admins <= 1:
            raise Conflict(f"{membership.user} is the last admin of {space.name}.")


@transaction.atomic
def membership_remove(*, space: Space, user: User, actor) -> None:
    _require_admin(actor, space)
    membership = Membership.objects.select_for_update().filter(space=space, user=user).first()
    if membership is None:
        raise NotFound(f"{user} is not a member of {space.name}.")
    _refuse_removing_last_admin(space, membership, new_role=None)
    membership.delete()
    # The records they owned here are orphaned: owner cleared, suspect, in the admins' queue.
    from apps.records import evidence

    evidence.orphan_owned_by(user=user, space=space, actor=actor, now=timezone.now())


# --- API tokens -------------------------------------------------------------------------------


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str,
    scope: str = ApiToken.Scope.READ,
    spaces: Iterable[Space] = (),
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the plain text, which is never stored and shown once."""
    name = strip_invisible(name or "").strip()
    errors = {}
    if not user.is_active:
        errors["user"] = [f"{user.get_username()} is deactivated; their tokens would not work."]
    if not name or len(name) > 100:
        errors["name"] = ["A name of at most 100 characters is required."]
    if scope not in ApiToken.Scope.values:
        errors["scope"] = [f"Use one of {', '.join(ApiToken.Scope.values)}."]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = ["The expiry must be in the future."]
    spaces = list(spaces)
    visible = set(Space.objects.visible_to(user).values_list("id", flat=True))
    if any(space.pk not in visible for space in spaces):
        errors["spaces"] = ["You can only scope a token to spaces you are a member of."]
    if errors:
        raise InvalidInput("The token is not valid.", details=errors)
    plain = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        token_hash=ApiToken.hash(plain),
        prefix=plain[:12],
        scope=scope,
        expires_at=expires_at,
    )
    if spaces:
        token.spaces.set(spaces)
    audit_log(
        kind=AuditEvent.Kind.TOKEN_CREATED,
        actor=user,
        token=token,
        message=f"Token {token.name!r} ({token.prefix}…), {token.scope}",
        details={"spaces": [space.slug for space in spaces], "scope": token.scope},
    )
    return token, plain


def token_revoke(*, token: ApiToken, actor: User) -> ApiToken:
    """Revoke at once; idempotent."""
    if token.user_id != actor.pk and not actor.is_superuser:
        raise NotFound("Token not found.")
    return token_mark_revoked(
        token=token, actor=actor, message=f"Token {token.name!r} ({token.prefix}…) of {token.user}"
    )


def token_mark_revoked(*, token: ApiToken, actor: User | ApiToken, message: str) -> ApiToken:
    """Revoke at once and audit it with `message`, unless it is revoked already (idempotent).
    The caller has checked that the actor may: a token's owner, or an agent's space admin."""
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        audit_log(kind=AuditEvent.Kind.TOKEN_REVOKED, actor=actor, token=token, message=message)
    return token


def token_authenticate(plain: str) -> ApiToken | None:
    """The active token for a plain `ckb_…` string, or None. Marks it used (at most once a minute)."""
    if not plain or not plain.startswith("ckb_") or len(plain) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(token_hash=ApiToken.hash(plain)).first()
    if token is not None and not token.is_active:
        # Someone still holds a revoked or expired token: worth knowing who and from where.
        audit_log(
            kind=AuditEvent.Kind.TOKEN_REVOKED_USED,
            token=token,
            username=token.user.get_username(),
            message=f"{'Revoked' if token.revoked_at else 'Expired'} token {token.prefix}… used",
        )
        return None
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
