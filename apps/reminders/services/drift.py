"""Drift reports: the paths a commit changed make the records anchored to them suspect, once
per (repository, commit), within the spaces the reporter may edit."""

from __future__ import annotations

import datetime as dt
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space
from apps.core.errors import Forbidden, InvalidInput
from apps.records import evidence
from apps.reminders.models import DriftReport

MAX_CHANGED_PATHS = 10_000
MAX_PATH_CHARS = 1_000
_COMMIT_RE = re.compile(r"^[0-9A-Za-z._/-]{0,64}$")


def _check_names(repository, commit) -> None:
    errors: dict[str, list[str]] = {}
    if not isinstance(repository, str) or not repository.strip() or len(repository) > 300:
        errors["repository"] = ["A repository name of at most 300 characters is required."]
    if not isinstance(commit, str) or not _COMMIT_RE.match(commit or ""):
        errors["commit"] = ["A commit id (letters, digits, at most 64 characters)."]
    if errors:
        raise InvalidInput("The drift report is not valid.", details=errors)


def _clean_paths(changed_paths) -> list[str]:
    if not isinstance(changed_paths, list | tuple):
        raise InvalidInput(
            "changed_paths must be a list of file paths.",
            details={"changed_paths": ["Not a list."]},
        )
    if len(changed_paths) > MAX_CHANGED_PATHS:
        raise InvalidInput(
            f"At most {MAX_CHANGED_PATHS:,} changed paths per report.",
            details={"changed_paths": ["Too many paths."]},
        )
    from apps.records.anchors import normalise_path

    paths: list[str] = []
    for value in changed_paths:
        if not isinstance(value, str) or "\x00" in value or len(value) > MAX_PATH_CHARS:
            raise InvalidInput(
                f"Each changed path must be text of at most {MAX_PATH_CHARS} characters.",
                details={"changed_paths": [f"Invalid path: {str(value)[:60]!r}"]},
            )
        path = normalise_path(value)
        if path and path not in paths:
            paths.append(path)
    return paths


def drift_report(
    *,
    repository: str,
    commit: str,
    changed_paths,
    source: str,
    actor=None,
    compare_url: str = "",
    now: dt.datetime | None = None,
) -> tuple[DriftReport, bool]:
    """Records anchored to the changed paths become suspect. Returns (report, created).

    `actor` None means a trusted caller (webhook with the shared secret, the management
    command): every space. An API token marks records only in spaces it may edit. The same
    (repository, commit) reported twice changes nothing the second time."""
    _check_names(repository, commit)
    paths = _clean_paths(changed_paths)
    repository = repository.strip()
    now = now or timezone.now()
    space_ids = None if actor is None else _editable_space_ids(actor)
    with transaction.atomic():
        if commit:
            existing = (
                DriftReport.objects.select_for_update()
                .filter(repository=repository, commit=commit)
                .first()
            )
            if existing is not None:
                return _drift_widen(existing, space_ids=space_ids, now=now)
        try:
            with transaction.atomic():
                report = DriftReport.objects.create(
                    repository=repository,
                    commit=commit,
                    source=source,
                    changed_paths=paths,
                    space_ids=space_ids,
                    compare_url=compare_url[:500] if compare_url else "",
                    created_at=now,
                )
        except IntegrityError:
            # A concurrent delivery of the same push won the race: widen it if we reach further.
            existing = DriftReport.objects.select_for_update().get(
                repository=repository, commit=commit
            )
            return _drift_widen(existing, space_ids=space_ids, now=now)
        report.suspect_count, report.unmatched_paths = evidence.code_changed(
            repository=repository,
            commit=commit,
            paths=paths,
            now=now,
            space_ids=space_ids,
            cause_url=compare_url,
        )
        report.save(update_fields=["suspect_count", "unmatched_paths"])
    return report, True


def _editable_space_ids(actor) -> list[int] | None:
    """The spaces whose records `actor` may mark suspect; None for a superuser (every space)."""
    user = access.user_of(actor)
    if user is None:
        raise Forbidden("Authentication is required.")
    if not getattr(actor, "can_write", True):
        raise Forbidden("Reporting drift needs a read-write token.")
    if user.is_superuser:
        return None
    visible = Space.objects.visible_to(actor).values_list("id", flat=True)
    roles = Membership.objects.filter(
        user=user,
        space_id__in=visible,
        role__in=[Membership.Role.EDITOR, Membership.Role.ADMIN],
    )
    space_ids = list(roles.values_list("space_id", flat=True))
    if not space_ids:
        # Marking records suspect changes them: viewers (and read tokens) may not.
        raise Forbidden("Reporting drift needs edit rights in at least one space.")
    return space_ids


def _drift_widen(
    report: DriftReport, *, space_ids: list[int] | None, now: dt.datetime
) -> tuple[DriftReport, bool]:
    """The same commit reported again. Nothing changes for spaces the first report reached, but
    a report that reaches further (a webhook after a space-scoped token, or a token for other
    spaces) marks records in the spaces not reached yet: a token for one space must not stop
    the organisation's webhook from reaching the others."""
    if report.space_ids is None:
        return report, False
    reached = set(report.space_ids)
    if space_ids is None:
        new_spaces = list(Space.objects.exclude(id__in=reached).values_list("id", flat=True))
    else:
        new_spaces = sorted(set(space_ids) - reached)
    if not new_spaces and space_ids is not None:
        return report, False
    marked, _ = evidence.code_changed(
        repository=report.repository,
        commit=report.commit,
        paths=list(report.changed_paths),
        now=now,
        space_ids=new_spaces,
        cause_url=report.compare_url,
    )
    report.suspect_count += marked
    report.space_ids = None if space_ids is None else sorted(reached | set(new_spaces))
    report.save(update_fields=["suspect_count", "space_ids"])
    return report, True
