"""The conflict page: someone saved the record while this edit was open. The edit is merged field
by field against the version it started from, and nothing is saved until the merge is
confirmed (it comes back to the editor as an ordinary edit)."""

from __future__ import annotations

import difflib

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render

from apps.core.errors import InvalidInput
from apps.records import fields as record_fields
from apps.records import owners, services
from apps.records.models import Record
from apps.web.forms import RecordForm
from apps.web.selectors import revision_number

# (form field, label) in the editor's order, the body last (apps.records.fields).
CONFLICT_FIELDS = record_fields.form_fields()


def conflict_page(request: HttpRequest, record: Record, form: RecordForm) -> HttpResponse:
    """Someone saved first. Merge field by field against the version this edit started from:
    yours where only you changed a field, theirs where only they did, and a question where you
    both changed it differently. Nothing is saved until the merge is confirmed."""
    current = Record.objects.select_related("owner_user", "owner_team", "updated_by").get(
        pk=record.pk
    )
    your_version = form.cleaned_data.get("version")
    base_revision = (
        current.revisions.filter(version=your_version).order_by("-number").first()
        if your_version
        else None
    )
    saved_revision = revision_number(current)
    rows, merged = _merge(
        [(n, label) for n, label in CONFLICT_FIELDS if n in form.fields],
        base=_values_from_snapshot(base_revision.snapshot) if base_revision else None,
        theirs=_values_from_record(current),
        mine=_values_from_form(form),
        saved_revision=saved_revision,
    )
    if not rows:
        # What is saved is exactly what this form holds: the same form sent twice, or two people
        # making the same change. Nothing to resolve.
        messages.success(request, f"{record.key} saved.")
        return redirect(current.get_absolute_url())
    merged_initial = {**merged, "message": form.cleaned_data.get("message") or ""}
    rebase = RecordForm(
        space=record.space,
        kind=record.kind,
        record=current,
        initial={**merged_initial, "version": current.version},
    )
    return render(
        request,
        "web/record_conflict.html",
        {
            "record": current,
            "space": record.space,
            "rows": rows,
            "asked": [row for row in rows if row["who"] == "both"],
            "merged": merged_initial,
            "your_version": your_version,
            # Named by revision number, as the history and the record page name them.
            "your_revision": revision_number(current, version=your_version),
            "saved_revision": saved_revision,
            "rebase_form": rebase,
        },
        status=409,
    )


def _merge(
    names: list[tuple[str, str]],
    *,
    base: dict[str, str] | None,
    theirs: dict[str, str],
    mine: dict[str, str],
    saved_revision: int | None,
) -> tuple[list[dict], dict[str, str]]:
    """(a row for each field that differs, the merged values of the fields decided without a
    question). Without the base version every difference is a question."""
    rows, merged = [], {}
    for name, label in names:
        t, m = theirs[name], mine[name]
        b = base[name] if base is not None else None
        if t == m:
            merged[name] = t
            continue
        if b == m:
            who = "theirs"  # only they changed it: keep theirs
            merged[name] = t
        elif b == t:
            who = "mine"  # only you changed it: yours
            merged[name] = m
        else:
            who = "both"  # you both changed it, differently: ask
        rows.append(_row(name, label, who=who, theirs=t, mine=m, saved_revision=saved_revision))
    return rows, merged


def _row(
    name: str, label: str, *, who: str, theirs: str, mine: str, saved_revision: int | None
) -> dict:
    """One field of the conflict page: both values as text, and their diff."""
    show = _owner_text if name == "owner" else _text
    a_text, b_text = show(theirs), show(mine)
    diff = list(
        difflib.unified_diff(
            a_text.splitlines(),
            b_text.splitlines(),
            f"r{saved_revision} (saved)",
            "your edit",
            lineterm="",
        )
    )
    return {
        "name": name,
        "label": label,
        "who": who,
        "theirs": a_text,
        "mine": b_text,
        "theirs_value": theirs,
        "mine_value": mine,
        "diff": diff,
    }


def _values_from_snapshot(snap: dict) -> dict[str, str]:
    """A snapshot's editable fields as the editor's text boxes hold them, by form field."""
    values: dict[str, str] = {}
    for spec in record_fields.FIELDS:
        if spec.kind == record_fields.OWNER:
            value = owners.form_value(
                user_id=snap.get("owner_user"), team_id=snap.get("owner_team")
            )
        elif spec.kind == record_fields.LIST:
            value = spec.separator.join(snap.get(spec.name) or [])
        else:
            value = snap.get(spec.name) or ""
        values[spec.form] = value.replace("\r\n", "\n") if spec.name == "body" else value
    return values


def _values_from_record(record: Record) -> dict[str, str]:
    return _values_from_snapshot(services.snapshot(record))


def _values_from_form(form: RecordForm) -> dict[str, str]:
    """What the form would store, in the same shape as a snapshot's values ("a,b" and "a, b"
    are the same tags)."""
    fields = form.service_fields()
    owner_user, owner_team = owners.split(form.cleaned_data.get("owner"))
    decided_on, valid_until = fields.get("decided_on"), fields.get("valid_until")
    snap = {
        **fields,
        "owner_user": owner_user.pk if owner_user else None,
        "owner_team": owner_team.pk if owner_team else None,
        "decided_on": decided_on.isoformat() if decided_on else "",
        "valid_until": valid_until.isoformat() if valid_until else "",
    }
    if "status" not in fields:
        snap["status"] = form.record.status if form.record else ""
    return _values_from_snapshot(snap)


def _owner_text(value: str) -> str:
    try:
        owner = owners.from_form(value)
    except InvalidInput:
        owner = None
    return _owner_label(owner)


def resolve_merge(data: QueryDict) -> QueryDict:
    """The conflict page's merge form as an ordinary edit: each field both people changed takes
    the side picked for it ("mine" or "theirs"; theirs when none was picked)."""
    data = data.copy()
    for key in [k for k in data if k.startswith("pick__")]:
        name = key.removeprefix("pick__")
        side = data.get(key) if data.get(key) in ("mine", "theirs") else "theirs"
        data[name] = data.get(f"{side}__{name}", "")
    return data


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).replace("\r\n", "\n")


def _owner_label(owner: object) -> str:
    return str(owner) if owner else "Unowned"
