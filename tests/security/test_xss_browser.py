"""Every XSS payload, saved as a record's title, summary, tags, body and link note, is shown by the
web UI in headless Chromium without running anything.

CSP is switched off here on purpose: this tests the escaping and the sanitiser on their own (the
CSP is a second wall, checked in test_deploy_settings)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from apps.records import services
from apps.records.models import Record
from apps.reminders import services as reminders
from apps.retrieval import services as retrieval
from tests.e2e.conftest import browser  # noqa: F401 - shared Playwright fixture
from tests.factories import make_record
from tests.security.test_markdown_xss import PAYLOADS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PER_HOST = 12

# Runs in the page after load: anything executable that made it into the DOM.
FIND_EXECUTABLE = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (name.startsWith('on')) bad.push(el.tagName + ' ' + name);
      if (['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'srcdoc'].includes(name)
          && (value.startsWith('javascript:') || value.startsWith('vbscript:')
              || value.startsWith('data:text/html'))) bad.push(el.tagName + ' ' + name + '=' + value);
    }
    if (['IFRAME', 'OBJECT', 'EMBED', 'FRAMESET', 'BASE'].includes(el.tagName)) bad.push(el.tagName);
  }
  for (const s of document.querySelectorAll('script:not([src])')) {
    if (s.textContent.includes('alert') || s.textContent.includes('__xss')) bad.push('inline script');
  }
  return bad;
}"""


def _one_line(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit] or "x"


def test_no_payload_runs_in_any_record_page(browser, settings, live_server, space, owner):  # noqa: F811
    settings.SECURE_CSP = {}
    settings.SECURE_CSP_REPORT_ONLY = {}
    # One record per payload: it is that record's title, summary and tag (shown in the space's
    # record list and in every link list).
    records = [
        make_record(
            space=space,
            actor=owner,
            title=_one_line(payload, 200),
            summary=_one_line(payload, 300),
            owner_user=owner,
            # A third are long overdue, so they fill the owner's review queue and the dashboards.
            now=timezone.now() - dt.timedelta(days=0 if n % 3 else 400),
        )
        for n, payload in enumerate(PAYLOADS)
    ]
    # The record services refuse such tags now (letters, digits and - _ . / : + # only), but
    # rows saved before that rule keep theirs, so the pages must still show them inertly.
    for record, payload in zip(records, PAYLOADS, strict=True):
        Record.objects.filter(pk=record.pk).update(tags=[_one_line(payload, 50)])
        record.refresh_from_db()
    # A few host records carry the payloads in their markdown bodies and as the notes of their
    # links to the payload records, so a handful of record pages shows every payload in every place.
    hosts = []
    for start in range(0, len(PAYLOADS), PER_HOST):
        chunk = list(range(start, min(start + PER_HOST, len(PAYLOADS))))
        body = "\n\n".join(
            f"{PAYLOADS[i]}\n\n- item {PAYLOADS[i]}\n\n> {PAYLOADS[i]}" for i in chunk
        )
        host = make_record(space=space, actor=owner, title=f"Host {start}", body=body)
        for i in chunk:
            services.record_link(
                source=host,
                target=records[i],
                type="relates_to",
                actor=owner,
                note=_one_line(PAYLOADS[i], 300),
            )
        hosts.append(host)

    # A second revision (for the diff), payload records owned by the viewer (review queue) and
    # gaps whose queries are payloads (gaps page).
    services.record_update(
        record=hosts[0], actor=owner, expected_version=1, changes={"body": PAYLOADS[-1]}
    )
    for payload in PAYLOADS[:20]:
        retrieval.gap_report(principal=owner, query=payload, space=space)
    reminders.sweep(full=True)
    reminders.snapshot_health()

    # Sign in by cookie (the sign-in form has its own tests).
    client = Client()
    client.force_login(owner)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page = context.new_page()
    # The detectors catch a payload that does run (so a pass below means something).
    page.set_content('<img src=x onerror="window.__xss=1"><a href="javascript:alert(1)">x</a>')
    page.wait_for_function("() => window.__xss === 1")
    assert page.evaluate(FIND_EXECUTABLE) == ["IMG onerror", "A href=javascript:alert(1)"]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    findings: dict[str, list[str]] = {}
    pages = -(-(len(records) + len(hosts)) // 50)  # the space list shows 50 records a page
    urls = (
        [f"/s/{space.slug}/?page={n}" for n in range(1, pages + 1)]
        + [f"/s/{space.slug}/{host.key}/" for host in hosts]
        # A payload record's own page (incoming link with the note) and a revision page.
        + [f"/s/{space.slug}/{records[0].key}/", f"/s/{space.slug}/{hosts[0].key}/history/1/"]
        # Everywhere else titles, tags, notes and bodies show up: the link graph, the history,
        # a diff, search results (with highlighted snippets), the editor (its live preview
        # renders the body), review queue, health dashboards and the gaps page.
        + [
            f"/s/{space.slug}/{hosts[0].key}/graph/",
            f"/s/{space.slug}/{hosts[0].key}/history/",
            f"/s/{space.slug}/{hosts[0].key}/history/2/",
            f"/s/{space.slug}/?q=script+alert",
            f"/s/{space.slug}/?q=img+onerror&kind=decision",
            f"/s/{space.slug}/{hosts[1].key}/edit/",
            "/review/",
            "/health",
            f"/spaces/{space.slug}/health",
            f"/spaces/{space.slug}/gaps/",
        ]
    )
    try:
        for url in urls:
            response = page.goto(url, wait_until="load")
            assert response is not None and response.status == 200, url
            bad = page.evaluate(FIND_EXECUTABLE)
            injected = page.evaluate("() => typeof window.__xss !== 'undefined'")
            if bad or injected:
                findings[url] = bad + (["window.__xss set"] if injected else [])
        # Give timers, onerror/onload and autofocus handlers a moment on the last page.
        page.wait_for_timeout(300)
    finally:
        context.close()
    assert dialogs == []
    assert findings == {}
