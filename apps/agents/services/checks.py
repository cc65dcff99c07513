"""Checks shared by an agent's writes (proposals, escalations): which agent is calling, in
which space, on which paths, with what text."""

from __future__ import annotations

from collections.abc import Iterable

from apps.accounts.models import ApiToken, Space
from apps.agents.models import Agent
from apps.agents.scope import _refuse, agent_of, path_allowed, refuse_paths
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.records import anchors as anchors_mod
from apps.records.models import Record

MAX_RATIONALE = 2_000


def agent_for(token: ApiToken) -> Agent:
    agent = agent_of(token)
    if agent is None:
        raise Forbidden(
            "Proposals come from registered agents: use a token issued on the agent's page."
        )
    return agent


def space_for(agent: Agent, token: ApiToken, slug: str | None) -> Space:
    spaces = {s.slug: s for s in agent.spaces.all()}
    if not slug:
        if len(spaces) == 1:
            return next(iter(spaces.values()))
        raise InvalidInput(
            "Name the space (its slug): this agent works in several.",
            details={"space": [f"One of {', '.join(sorted(spaces))}."]},
        )
    if not isinstance(slug, str) or slug not in spaces:
        _refuse(
            agent,
            token,
            f"{agent.name} is not registered for the space {str(slug)[:60]!r}.",
            {"spaces": [str(slug)[:60]], "allowed_spaces": sorted(spaces)},
        )
    return spaces[slug]


def check_paths(agent: Agent, token: ApiToken, anchors: Iterable[str], *, space: Space) -> None:
    outside = [a for a in anchors if not _glob_inside(agent, a)]
    if outside:
        refuse_paths(agent, token, outside, space=space)


def _literal_prefix(glob: str) -> str:
    glob = anchors_mod.normalise_path(glob)
    for i, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:i]
    return glob


def _glob_inside(agent: Agent, anchor: str) -> bool:
    """Whether an anchor glob lies inside the agent's paths: a concrete path must match; a glob
    must start inside one of them."""
    if not agent.path_globs:
        return True
    if path_allowed(agent, anchor):
        return True
    prefix = _literal_prefix(anchor)
    return bool(prefix) and path_allowed(agent, prefix.rstrip("/") + "/x")


def overlaps(glob_a: str, glob_b: str) -> bool:
    """Whether two path globs can match a common path (by their literal prefixes)."""
    a, b = _literal_prefix(glob_a), _literal_prefix(glob_b)
    return a.startswith(b) or b.startswith(a)


def clean_text(value: object, *, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", details={field: ["Must be text."]})
    if len(value) > limit:
        raise InvalidInput(
            f"{field} is limited to {limit:,} characters; this one has {len(value):,}.",
            details={field: [f"At most {limit:,} characters."]},
        )
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character.", details={field: ["NUL."]})
    return value.strip()


def visible_record(agent: Agent, token: ApiToken, *, key: str, space: Space) -> Record:
    if not isinstance(key, str) or not key.strip() or len(key) > 40:
        raise InvalidInput("Give the record's key, e.g. DEC-12.", details={"key": ["Invalid."]})
    record = (
        Record.objects.visible_to(token)
        .filter(space=space, key__iexact=key.strip(), archived_at__isnull=True)
        .select_related("space")
        .first()
    )
    if record is None:
        raise NotFound(
            f"No record {key.strip().upper()!r} in {space.slug} is visible to this agent."
        )
    check_paths(agent, token, record.anchors, space=space)
    return record
