"""The typed links an import writes: read from each file's markdown links and status lines (or
from contextkb's own front matter), resolved to the other imported files, written through the
record services."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from apps.core.errors import ServiceError
from apps.interchange import adr_links, parsing
from apps.interchange.reading import ImportDoc, as_list, wanted_status
from apps.interchange.summary import ImportSummary
from apps.records import services as record_services
from apps.records.models import Link, Record

Progress = Callable[[str, int, int], None]

# A link target that looks like someone's ADR (reported when it does not resolve).
_ADR_PATH = re.compile(r"(^|[/_-])(adrs?|decisions?|decision-records?)([/_-]|$)", re.IGNORECASE)
_LINK_ORDER: dict[str, int] = {Link.Type.SUPERSEDES: 0, Link.Type.AMENDS: 1}


def number_candidates(
    docs_by_dir: dict[str, list[ImportDoc]], source: str, number: int | None, prefix: str
):
    same_dir = [
        d
        for d in docs_by_dir.get(posixpath.dirname(source), [])
        if parsing.file_number(d.adr.path) == number
    ]
    if prefix:
        named = [d for d in same_dir if posixpath.basename(d.adr.path).lower().startswith(prefix)]
        same_dir = named or same_dir
    return same_dir


@dataclass
class WantedLink:
    source: ImportDoc
    target: ImportDoc
    type: str
    partial: bool
    where: str
    inferred: bool = False  # a relates_to read from a plain mention (one per pair is enough)
    note: str | None = None  # contextkb's export: the link's note as it was


def collect_links(
    docs: list[ImportDoc], *, skipped_paths: set[str], summary: ImportSummary
) -> list[WantedLink]:
    """The links the imported files ask for, typed links first (supersedes, then amends), then
    relates_to between pairs that have no typed link; unresolved targets go to the summary."""
    return _Collector(docs, skipped_paths=skipped_paths, summary=summary).collect()


class _Collector:
    def __init__(self, docs: list[ImportDoc], *, skipped_paths: set[str], summary: ImportSummary):
        self.docs, self.skipped_paths, self.summary = docs, skipped_paths, summary
        self.by_path = {d.adr.path.lower(): d for d in docs}
        self.paths = {d.adr.path.lower(): d.adr.path for d in docs}
        self.docs_by_dir: dict[str, list[ImportDoc]] = {}
        for d in docs:
            self.docs_by_dir.setdefault(posixpath.dirname(d.adr.path), []).append(d)
        self.by_key = {str(d.adr.front_matter.get("key")): d for d in docs if d.adr.exported}
        self.typed: dict[tuple[int, int, str], WantedLink] = {}
        self.related: dict[frozenset[int], WantedLink] = {}
        # The repositories the imported folder lives in, as far as its own GitHub links show:
        # those that lead to another imported file.
        self.home_repos = {
            adr_links.github_repo(link.url)
            for doc in docs
            for link in doc.adr.links[: adr_links.MAX_LINKS_PER_FILE]
            if link.number is None
            and adr_links.github_repo(link.url)
            and adr_links.resolve_url(link.url, source=doc.adr.path, paths=self.paths)
            not in (None, doc.adr.path)
        }

    def collect(self) -> list[WantedLink]:
        for doc in self.docs:
            if doc.record is None:
                continue
            if doc.adr.exported:
                self._from_front_matter(doc)
            else:
                self._from_markdown(doc)
        # A typed link between two records makes a relates_to between them redundant.
        typed_pairs = {frozenset((s, t)) for s, t, _ in self.typed}
        result = sorted(self.typed.values(), key=lambda w: _LINK_ORDER.get(w.type, 2))
        result += [w for pair, w in self.related.items() if pair not in typed_pairs]
        return result

    def _unresolved(self, doc: ImportDoc, line: int, relation: str, target: str, note: str = ""):
        self.summary.links_unresolved.append(
            {
                "path": doc.adr.path,
                "line": line,
                "relation": relation,
                "target": target,
                "note": note,
            }
        )

    def _unresolved_link(self, doc: ImportDoc, link: adr_links.FoundLink, note: str = "") -> None:
        self._unresolved(doc, link.line_no, link.relation.replace("_", " "), link.url, note)

    def _want(
        self,
        source: ImportDoc,
        target: ImportDoc,
        relation: str,
        partial: bool,
        where: str,
        exact: bool = False,
        note: str | None = None,
    ) -> None:
        if source.record is None or target.record is None or source is target:
            return
        link_type = _link_type(relation, exact=exact)
        if link_type is None:
            pair = frozenset((source.record.pk, target.record.pk))
            self.related.setdefault(
                pair, WantedLink(source, target, Link.Type.RELATES_TO, False, where, inferred=True)
            )
            return
        if relation in (adr_links.SUPERSEDED_BY, adr_links.AMENDED_BY):
            source, target = target, source
        key = (source.written.pk, target.written.pk, link_type)
        if key in self.typed:
            self.typed[key].partial = self.typed[key].partial or partial
        else:
            self.typed[key] = WantedLink(source, target, link_type, partial, where, note=note)

    def _from_front_matter(self, doc: ImportDoc) -> None:
        """contextkb's own export says exactly which links exist, relates_to included."""
        adr = doc.adr
        links = adr.front_matter.get("links") or {}
        if not isinstance(links, dict):
            self.summary.problem(adr.path, "front matter `links` is not a mapping; links ignored")
            return
        notes = adr.front_matter.get("link_notes") or {}
        notes = notes if isinstance(notes, dict) else {}
        for link_type, keys in links.items():
            if link_type not in Link.Type.values:
                self.summary.problem(adr.path, f"unknown link type {link_type!r}")
                continue
            for key in as_list(keys):
                target = self.by_key.get(key)
                if target is None:
                    self._unresolved(doc, 1, link_type, key)
                    continue
                note = parsing.as_text(notes.get(f"{link_type} {key}"))[:300]
                where = f"{adr.path} front matter"
                self._want(doc, target, link_type, False, where, exact=True, note=note)

    def _from_markdown(self, doc: ImportDoc) -> None:
        adr = doc.adr
        if len(adr.links) > adr_links.MAX_LINKS_PER_FILE:
            self.summary.problem(
                adr.path,
                f"more than {adr_links.MAX_LINKS_PER_FILE} links; only the first "
                f"{adr_links.MAX_LINKS_PER_FILE} were followed",
            )
        for link in adr.links[: adr_links.MAX_LINKS_PER_FILE]:
            if link.number is not None:
                target = self._by_number(doc, link)
            else:
                target = self._by_url(doc, link)
            if target is not None and target is not doc:
                self._want(doc, target, link.relation, link.partial, f"{adr.path}:{link.line_no}")

    def _by_number(self, doc: ImportDoc, link: adr_links.FoundLink) -> ImportDoc | None:
        """A link written as a number ("ADR 12"): the one file of the same folder with it."""
        adr = doc.adr
        candidates = number_candidates(self.docs_by_dir, adr.path, link.number, link.prefix)
        candidates = [c for c in candidates if c is not doc]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            self._unresolved_link(doc, link, "no ADR with that number")
            return None
        linking_back = [c for c in candidates if links_to(c, doc, self.paths)]
        if len(linking_back) == 1:
            # Two files share the number; only one of them links back to this file.
            self.summary.problem(
                adr.path,
                f"line {link.line_no}: {link.url!r} matches {len(candidates)} files; "
                f"linked to {linking_back[0].adr.path}, the one that links back here",
            )
            return linking_back[0]
        names = ", ".join(sorted(c.adr.path for c in candidates))
        self._unresolved_link(doc, link, f"ambiguous: {names}")
        return None

    def _by_url(self, doc: ImportDoc, link: adr_links.FoundLink) -> ImportDoc | None:
        """A markdown link to a file: the imported file it leads to. A link that looks like an
        ADR but leads nowhere is reported (and, when typed and numbered, matched by number)."""
        adr = doc.adr
        real = adr_links.resolve_url(link.url, source=adr.path, paths=self.paths)
        repo = adr_links.github_repo(link.url)
        if real == adr.path and repo and repo not in self.home_repos:
            # This file's own path, in a repository no other link of the import points into:
            # most likely another repository (a private twin, a fork).
            note = f"this file's own path, in github.com/{repo}"
            self._unresolved_link(doc, link, note)
            return None
        if real is not None:
            return self.by_path[real.lower()]
        if not self._worth_reporting(doc, link):
            return None
        target, note = None, ""
        if link.relation != adr_links.RELATES and link.fallback_number is not None:
            candidates = [
                c
                for c in number_candidates(
                    self.docs_by_dir, adr.path, link.fallback_number, link.fallback_prefix
                )
                if c is not doc
            ]
            if len(candidates) == 1:
                target = candidates[0]
                note = f"matched by its number to {target.adr.path}"
        self._unresolved_link(doc, link, note)
        return target

    def _worth_reporting(self, doc: ImportDoc, link: adr_links.FoundLink) -> bool:
        """Whether a link that resolves to no imported file is meant as an ADR link: typed, or
        into a folder of ADRs, or named like one (not a skipped file, not a plain web link)."""
        resolved = relative_target(link.url, doc.adr.path)
        if resolved is not None and resolved.lower() in self.skipped_paths:
            return False
        in_adr_dir = resolved is not None and posixpath.dirname(resolved) in self.docs_by_dir
        adr_like = parsing.file_number(
            link.url.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
        ) is not None and bool(_ADR_PATH.search(link.url))
        typed = link.relation != adr_links.RELATES
        return adr_links.looks_like_adr_link(link.url) and (typed or in_adr_dir or adr_like)


def _link_type(relation: str, *, exact: bool) -> str | None:
    """The link type a relation asks for (read from the target's side for "superseded by" and
    "amended by"), or None for a plain mention, which becomes one relates_to per pair."""
    if relation in (adr_links.SUPERSEDED_BY, adr_links.SUPERSEDES, Link.Type.SUPERSEDES):
        return Link.Type.SUPERSEDES
    if relation in (adr_links.AMENDED_BY, adr_links.AMENDS, Link.Type.AMENDS):
        return Link.Type.AMENDS
    if relation in Link.Type.values and (exact or relation != Link.Type.RELATES_TO):
        # Exported front matter says exactly which links exist, relates_to included.
        return relation
    return None


def links_to(doc: ImportDoc, target: ImportDoc, paths: dict[str, str]) -> bool:
    """Whether `doc` has a markdown link to `target`'s file."""
    return any(
        link.number is None
        and adr_links.resolve_url(link.url, source=doc.adr.path, paths=paths) == target.adr.path
        for link in doc.adr.links[: adr_links.MAX_LINKS_PER_FILE]
    )


def relative_target(url: str, source: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), unquote(parts.path)))


def write_links(
    wanted: list[WantedLink], *, actor, summary: ImportSummary, progress: Progress | None
) -> None:
    ids = {w.source.written.pk for w in wanted} | {w.target.written.pk for w in wanted}
    existing = set(
        Link.objects.filter(source_id__in=ids, target_id__in=ids).values_list(
            "source_id", "target_id", "type"
        )
    )
    existing_pairs = {frozenset((s, t)) for s, t, _ in existing}
    for done, w in enumerate(wanted):
        if progress:
            progress("links", done, len(wanted))
        source, target = w.source.written, w.target.written
        if (source.pk, target.pk, w.type) in existing or (
            w.inferred and frozenset((source.pk, target.pk)) in existing_pairs
        ):
            summary.links_existing += 1
            continue
        try:
            with transaction.atomic():
                # Re-read both ends: an earlier link may have changed a status.
                source = Record.objects.get(pk=source.pk)
                target = Record.objects.get(pk=target.pk)
                record_services.record_link(
                    source=source,
                    target=target,
                    type=w.type,
                    actor=actor,
                    note=w.note
                    if w.note is not None
                    else (("Partly: " if w.partial else "") + f"imported from {w.where}")[:300],
                )
                target_status = wanted_status(w.target)
                if (
                    w.type == Link.Type.SUPERSEDES
                    and w.partial
                    and target_status != Record.Status.SUPERSEDED
                ):
                    # "Supersedes some aspects of X": X still holds in part, keep its own status.
                    record_services.record_update(
                        record=Record.objects.get(pk=target.pk),
                        actor=actor,
                        expected_version=None,
                        changes={"status": target_status},
                        message=f"Only partly superseded by {source.key}; keeps its status",
                        allow_archived=True,
                    )
        except ServiceError as exc:
            summary.problem(
                w.where.split(":")[0],
                f"link {source.key} {w.type} {target.key} not created: {exc.message}",
            )
            continue
        existing_pairs.add(frozenset((source.pk, target.pk)))
        summary.links_created.append(
            {"source": source.key, "type": w.type, "target": target.key, "where": w.where}
        )
    if progress and wanted:
        progress("links", len(wanted), len(wanted))
