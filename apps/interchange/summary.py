"""What an import did, file by file: what the command, the import page and the API show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse


@dataclass
class ImportSummary:
    """What an import did, file by file; also what the command, page and API show."""

    dry_run: bool = False
    space_slug: str = ""  # for the records' addresses in as_dict (none in a dry run)
    files_seen: int = 0
    created: list[dict[str, str]] = field(default_factory=list)
    updated: list[dict[str, str]] = field(default_factory=list)
    unchanged: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    links_created: list[dict[str, str]] = field(default_factory=list)
    links_existing: int = 0
    links_unresolved: list[dict[str, Any]] = field(default_factory=list)
    unknown_statuses: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def problem(self, path: str, message: str) -> None:
        self.problems.append({"path": path, "message": message})

    def counts(self) -> dict[str, int]:
        return {
            "files": self.files_seen,
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "skipped": len(self.skipped),
            "links_created": len(self.links_created),
            "links_existing": self.links_existing,
            "links_unresolved": len(self.links_unresolved),
            "unknown_statuses": len(self.unknown_statuses),
            "problems": len(self.problems),
        }

    def url(self, key: str) -> str:
        """The record's page (relative), '' in a dry run, whose keys were never saved."""
        if self.dry_run or not self.space_slug:
            return ""
        return reverse("web:record_detail", args=[self.space_slug, key])

    def _with_urls(self, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**e, "url": self.url(e["key"])} for e in entries]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "created": self._with_urls(self.created),
            "updated": self._with_urls(self.updated),
            "unchanged": self._with_urls(self.unchanged),
            "skipped": self.skipped,
            "links_created": [
                {**e, "source_url": self.url(e["source"]), "target_url": self.url(e["target"])}
                for e in self.links_created
            ],
            "links_unresolved": self.links_unresolved,
            "unknown_statuses": self.unknown_statuses,
            "problems": self.problems,
        }

    def lines(self, *, verbose: bool = False) -> list[str]:
        """A plain-text report (the command prints it; `verbose` also lists what was created)."""
        c = self.counts()
        out = [
            ("Dry run: nothing was saved. " if self.dry_run else "")
            + f"{c['files']} files: {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['skipped']} skipped.",
            f"Links: {c['links_created']} created, {c['links_existing']} already there, "
            f"{c['links_unresolved']} unresolved.",
        ]
        if verbose and self.created:
            out.append("Created:")
            out += [f"  {c['key']}: {c['path']}" for c in self.created]
        if self.updated:
            out.append("Updated:")
            out += [f"  {u['key']}: {u['path']}" for u in self.updated]
        if self.skipped:
            out.append("Skipped:")
            out += [f"  {s['path']}: {s['reason']}" for s in self.skipped]
        if self.links_unresolved:
            out.append("Unresolved links (target missing):")
            out += [
                f"  {u['path']}:{u['line']}: {u['relation']} {u['target']}"
                + (f" ({u['note']})" if u.get("note") else "")
                for u in self.links_unresolved
            ]
        if self.unknown_statuses:
            out.append("Unknown statuses (imported as draft; the word is kept as import metadata):")
            out += [f"  {u['path']}: {u['status']!r}" for u in self.unknown_statuses]
        if self.problems:
            out.append("Notes:")
            out += [f"  {p['path']}: {p['message']}" for p in self.problems]
        return out
