"""The import page in headless Chromium with a real Celery worker: upload a zip, watch the job
finish (htmx polling), download the space as a zip and import that into an empty space."""

from __future__ import annotations

import re
import zipfile

import pytest
import yaml

from apps.accounts.models import Membership
from tests.e2e.conftest import browser, login, new_page  # noqa: F401 (fixtures)
from tests.factories import MembershipFactory, SpaceFactory
from tests.interchange.test_export import _state
from tests.interchange.test_jobs import _on_queue, _zip_of, private_worker  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _upload_and_wait(page, slug: str, path) -> str:
    page.goto(f"/s/{slug}/import/")
    page.get_by_label("Zip of your ADR folder").set_input_files(str(path))
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url(re.compile(r"/imports/[0-9a-f-]+/$"))
    # The page polls (htmx) until the worker is done; no reload.
    page.locator("#import-job h2", has_text="Done").wait_for(timeout=90_000)
    return page.locator("#import-job").inner_text()


def test_upload_watch_download_and_import_the_export_into_an_empty_space(
    new_page,  # noqa: F811
    private_worker,  # noqa: F811
    space,
    owner,
    adr_folder,
    tmp_path,
):
    upload = tmp_path / "adr.zip"
    upload.write_bytes(_zip_of(adr_folder))
    page = new_page()
    login(page, owner)

    report = _upload_and_wait(page, space.slug, upload)

    assert "6 created, 0 updated, 0 unchanged, 1 skipped" in report
    assert "links: 3 created" in report
    assert "adr/README.md" not in report and "README.md\tindex page, not a decision" in report
    # Keys are links wherever the summary names them (created, and both ends of each link).
    assert page.get_by_role("link", name="DEC-10").count() == 2
    page.get_by_role("link", name="DEC-10").first.click()
    assert "10. Terraform directory structure" in page.locator("h1").first.inner_text()

    page.goto(f"/s/{space.slug}/import/")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download")).click()
    exported = tmp_path / "export.zip"
    download.value.save_as(exported)
    with zipfile.ZipFile(exported) as archive:
        names = sorted(archive.namelist())
        head = archive.read("payments/govuk-aws/0017-terraform-data-structure.md").decode()
    assert len(names) == 7 and "payments/index.md" in names
    meta = yaml.safe_load(head.split("---\n")[1])
    assert (meta["key"], meta["status"], meta["links"]) == (
        "DEC-17",
        "accepted",
        {"amends": ["DEC-10"]},
    )

    copy = SpaceFactory(slug="copy")
    MembershipFactory(space=copy, user=owner, role=Membership.Role.EDITOR)
    report = _upload_and_wait(page, copy.slug, exported)

    assert "6 created, 0 updated, 0 unchanged, 1 skipped" in report
    assert "0 unresolved" in report
    assert _state(copy) == _state(space)
    assert page.console_errors == []
