"""The space's repository sync page in the browser, against a real local git remote: the last
sync, its result, and a file both sides changed waiting for a person; then the person brings the
two together and "Sync now" clears it."""

from __future__ import annotations

import pytest

from apps.interchange import sync
from apps.records import services
from apps.records.models import Record
from tests.e2e.conftest import login
from tests.interchange.test_sync import git

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ADR = "# {n}. {title}\n\nDate: 2026-11-0{n}\n\n## Status\n\nAccepted\n\n## Decision\n\n{body}\n"


@pytest.fixture
def remote(tmp_path, settings):
    settings.CONTEXTKB_SYNC_ALLOW_FILE_REMOTES = True
    bare = tmp_path / "kb.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "docs" / "adr").mkdir(parents=True)
    (work / "docs/adr/0001-use-postgres.md").write_text(
        ADR.format(n=1, title="Use Postgres", body="Postgres.")
    )
    (work / "docs/adr/0002-use-redis.md").write_text(
        ADR.format(n=2, title="Use Redis", body="Redis.")
    )
    git(work, "checkout", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "Two ADRs")
    git(work, "push", "-q", "origin", "main")
    return bare, work


def _push_from(work, path: str, text: str) -> None:
    (work / path).write_text(text)
    git(work, "commit", "-q", "-am", "Change")
    git(work, "push", "-q", "origin", "HEAD:main")


def test_the_sync_page_shows_the_last_sync_its_result_and_files_waiting_for_a_person(
    new_page, shoot, space, owner, admin_user, remote
):
    bare, work = remote
    link = sync.repo_link_save(space=space, actor=admin_user, remote_url=f"file://{bare}")
    assert sync.repo_pull(link=link).result == "ok"
    # Both sides change DEC-2: in the app, and on the branch.
    dec2 = Record.objects.get(space=space, number=2)
    services.record_update(
        record=dec2,
        actor=owner,
        expected_version=dec2.version,
        changes={"body": "Redis, with persistence off.\n"},
    )
    _push_from(
        work,
        "docs/adr/0002-use-redis.md",
        ADR.format(n=2, title="Use Redis", body="Valkey instead."),
    )

    page = new_page()
    login(page, owner)
    page.goto(f"/s/{space.slug}/sync/")
    state = page.locator("#sync-state")
    assert "Last sync:" in state.inner_text() and "In sync" in state.inner_text()
    assert state.get_by_text("None.", exact=True).is_visible()  # nothing waits yet

    page.get_by_role("button", name="Pull only").click()
    page.wait_for_load_state()
    state = page.locator("#sync-state")
    text = state.inner_text()
    assert "(pull)" in text and "Files wait for a person" in text
    assert "1 file waits for a person (listed below)." in text
    row = state.locator("table tbody tr")
    assert row.count() == 1
    assert row.locator("td").nth(0).inner_text() == "docs/adr/0002-use-redis.md"
    assert "neither side was overwritten" in row.locator("td").nth(2).inner_text()
    # Nothing was overwritten: the app keeps its text, the branch keeps its own.
    assert Record.objects.get(pk=dec2.pk).body == "Redis, with persistence off.\n"
    assert "Valkey instead." in git(bare, "show", "main:docs/adr/0002-use-redis.md")
    shoot(page, "sync-page", full_page=False)

    # The record's key leads to the record, to compare the two.
    row.get_by_role("link", name=dec2.key).click()
    page.wait_for_url(f"**/s/{space.slug}/{dec2.key}/")
    assert "Redis, with persistence off." in page.locator(".markdown").inner_text()

    # A person brings the file in line with the app; the next sync clears the list.
    _push_from(
        work, "docs/adr/0002-use-redis.md", "# 2. Use Redis\n\nRedis, with persistence off.\n"
    )
    page.goto(f"/s/{space.slug}/sync/")
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_load_state()
    state = page.locator("#sync-state")
    assert "Files wait for a person" not in state.inner_text()
    assert state.get_by_text("None.", exact=True).is_visible()
    assert not page.console_errors
