"""Revision history: list, view one, diff any two (unified or side by side), restore."""

from __future__ import annotations

import difflib
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import InvalidInput, VersionConflict
from apps.records import fields as record_fields
from apps.records import selectors as record_selectors
from apps.records import services
from apps.records.models import Link, Record, Revision
from apps.web.graph import neighbourhood
from apps.web.views.common import record_or_404, service_errors

FIELD_LABELS = record_fields.diff_labels()


def _side_by_side(old: list[str], new: list[str]) -> list[dict]:
    """Rows of (left line, right line) with a change tag, aligned by difflib."""
    rows = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                rows.append(
                    {
                        "tag": "equal",
                        "left_no": i1 + offset + 1,
                        "left": old[i1 + offset],
                        "right_no": j1 + offset + 1,
                        "right": new[j1 + offset],
                    }
                )
            continue
        for offset in range(max(i2 - i1, j2 - j1)):
            li, rj = i1 + offset, j1 + offset
            rows.append(
                {
                    "tag": tag,
                    "left_no": li + 1 if li < i2 else None,
                    "left": old[li] if li < i2 else None,
                    "right_no": rj + 1 if rj < j2 else None,
                    "right": new[rj] if rj < j2 else None,
                }
            )
    return rows


def _unified_lines(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append({"kind": kind, "text": line})
    return out


# Stored values shown as people read them ("one_way" → "One-way door").
VALUE_LABELS: dict[str, dict[Any, str]] = {  # keyed by stored (JSON) values
    "status": dict(Record.Status.choices),
    "reversibility": dict(Record.Reversibility.choices),
    "impact": dict(Record.Impact.choices),
    "archived": {"True": "Archived", "False": "Not archived"},
}


def _link_line(line: str) -> str:
    link_type, _, key = line.partition(" ")
    label = dict(Link.Type.choices).get(link_type)
    return f"{label} {key}" if label else line


def _readable(entry: dict, old: Revision, new: Revision) -> None:
    """Replace stored codes by their labels in one field's diff (and re-diff the labels)."""
    field = entry["field"]
    if field == "links":
        convert = _link_line
    elif field in VALUE_LABELS:
        labels = VALUE_LABELS[field]

        def convert(line: str) -> str:
            return labels.get(line, line)
    else:
        return
    entry["old"] = [convert(line) for line in entry["old"]]
    entry["new"] = [convert(line) for line in entry["new"]]
    entry["unified"] = list(
        difflib.unified_diff(
            entry["old"], entry["new"], f"r{old.number}", f"r{new.number}", lineterm=""
        )
    )


@login_required
@service_errors
def record_history(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    revisions = record_selectors.present_revisions(
        request.user, record.revisions.select_related("author")
    )
    by_number = {r.number: r for r in revisions}
    mode = "split" if request.GET.get("mode") == "split" else "unified"

    def pick(name: str, default):
        value = request.GET.get(name, "")
        return by_number.get(int(value)) if value.isdigit() else default

    newest = revisions[0] if revisions else None
    new = pick("b", newest)
    old = pick("a", by_number.get(new.number - 1) if new else None)
    diff = []
    if old is not None and new is not None and old.pk != new.pk:
        if old.number > new.number:
            old, new = new, old
        for entry in record_selectors.revision_diff(old, new):
            entry["label"] = FIELD_LABELS.get(entry["field"], entry["field"].replace("_", " "))
            entry["label"] = entry["label"][:1].upper() + entry["label"][1:]
            _readable(entry, old, new)
            entry["rows"] = _side_by_side(entry["old"], entry["new"])
            entry["lines"] = _unified_lines(entry["unified"])
            diff.append(entry)
    return render(
        request,
        "web/record_history.html",
        {
            "record": record,
            "space": record.space,
            "revisions": revisions,
            "old": old,
            "new": new,
            "diff": diff,
            "mode": mode,
        },
    )


@login_required
@service_errors
def revision_detail(request: HttpRequest, slug: str, key: str, number: int) -> HttpResponse:
    record = record_or_404(request, slug, key)
    revision = record.revisions.select_related("author").filter(number=number).first()
    if revision is None:
        raise Http404("No such revision.")
    [revision] = record_selectors.present_revisions(request.user, [revision])
    numbers = record.revisions.aggregate(first=Min("number"), last=Max("number"))
    snap = revision.shown_snapshot
    links = [
        {"label": dict(Link.Type.choices).get(link.get("type"), link.get("type")), **link}
        for link in snap.get("links", [])
    ]
    return render(
        request,
        "web/revision_detail.html",
        {
            "record": record,
            "space": record.space,
            "revision": revision,
            "snap": snap,
            "links": links,
            "status_label": VALUE_LABELS["status"].get(snap.get("status"), snap.get("status")),
            "reversibility_label": VALUE_LABELS["reversibility"].get(snap.get("reversibility")),
            "impact_label": VALUE_LABELS["impact"].get(snap.get("impact")),
            "previous": revision.number - 1 if revision.number > numbers["first"] else None,
            "next": revision.number + 1 if revision.number < numbers["last"] else None,
            "latest": numbers["last"],
        },
    )


@login_required
@require_POST
@service_errors
def revision_restore(request: HttpRequest, slug: str, key: str, number: int) -> HttpResponse:
    record = record_or_404(request, slug, key)
    revision = Revision.objects.filter(record=record, number=number).first()
    if revision is None:
        raise Http404("No such revision.")
    version = request.POST.get("version", "")
    if not version.isdigit():
        messages.error(request, "Reload the history and try again; nothing was restored.")
        return redirect("web:record_history", slug=record.space.slug, key=record.key)
    try:
        services.record_restore_revision(
            record=record,
            revision=revision,
            actor=request.user,
            expected_version=int(version),
        )
    except VersionConflict:
        messages.error(
            request,
            f"{record.key} changed while you were looking at its history; nothing was restored. "
            "Check the newest revision and try again.",
        )
        return redirect("web:record_history", slug=record.space.slug, key=record.key)
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return redirect("web:record_history", slug=record.space.slug, key=record.key)
    messages.success(request, f"Restored revision {revision.number} of {record.key}.")
    return redirect("web:record_detail", slug=record.space.slug, key=record.key)


@login_required
@service_errors
def record_graph(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    record = record_or_404(request, slug, key)
    graph = neighbourhood(principal=request.user, record=record)
    return render(
        request,
        "web/record_graph.html",
        {"record": record, "space": record.space, "graph": graph},
    )
