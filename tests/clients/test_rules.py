"""`contextkb rules`: path-scoped rule files for agents, from the demo space, written by the real
client (a subprocess) from a live test server."""

from pathlib import Path

import pytest
from django.core.management import call_command

from apps.accounts.models import ApiToken, User
from apps.records import services
from apps.records.models import Record
from tests.clients.test_cli import run_cli
from tests.factories import make_token

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo")
    ana = User.objects.get(username="ana")
    return {
        "ana": ana,
        "token": make_token(ana, scope=ApiToken.Scope.READ)[1],
        "records": {r.title: r for r in Record.objects.filter(space__slug="payments")},
    }


def test_demo_rule_files_are_byte_identical_and_check_fails_after_an_owner_edits(
    live_server, demo, tmp_path
):
    out = tmp_path / "repo"
    first = run_cli(
        "rules", "--out", str(out), "--space", "payments", url=live_server.url, token=demo["token"]
    )
    assert first.returncode == 0, first.stderr
    files = snapshot(out)
    guard = demo["records"]["Agents must not log request bodies in billing"]
    pci = demo["records"]["Card data never leaves the PCI zone"]
    never_verified = demo["records"]["Agents must not edit migrations that have shipped"]
    name = f"contextkb-payments-{guard.key.lower()}"
    # Nested AGENTS.md in the anchored folders, one Copilot and one Cursor file per record.
    assert set(files) == {
        "services/billing/AGENTS.md",
        "services/cards/AGENTS.md",
        "services/api/AGENTS.md",
        "services/payouts/AGENTS.md",
        "services/webhooks/AGENTS.md",
        *(
            f".github/instructions/contextkb-payments-{r.key.lower()}.instructions.md"
            for r in Record.objects.filter(last_verified_at__isnull=False)
        ),
        *(
            f".cursor/rules/contextkb-payments-{r.key.lower()}.mdc"
            for r in Record.objects.filter(last_verified_at__isnull=False)
        ),
    }
    assert len(files) == 15
    assert f"created: {out}/services/billing/AGENTS.md" in first.stdout

    agents = files["services/billing/AGENTS.md"].decode()
    assert agents.startswith("# AGENTS.md — services/billing\n")
    assert f"### [{guard.key}](http" in agents and f"/{guard.key}/): Agents must not log" in agents
    assert "Freshness: v" in agents and " · accepted · fresh · last verified 20" in agents
    assert "#### Why" in agents  # the record's own headings sit below its entry
    assert "Owner: Platform team." in agents

    copilot = files[f".github/instructions/{name}.instructions.md"].decode()
    assert copilot.startswith(
        f"---\ndescription: '{guard.key} — Agents must not log request bodies in billing'\n"
        'applyTo: "services/billing/**"\n---\n'
    )
    cursor = files[f".cursor/rules/{name}.mdc"].decode()
    assert cursor.startswith(
        f"---\ndescription: {guard.key} — Agents must not log request bodies in billing\n"
        "globs: services/billing/**\nalwaysApply: false\n---\n"
    )
    for text in (agents, copilot, cursor):
        assert "<!-- contextkb: generated file." in text
    # Only owner-verified records: the never-verified guardrail is in no file.
    assert not any(never_verified.title.encode() in data for data in files.values())

    # Again, unchanged records: nothing is rewritten, every byte is the same.
    second = run_cli(
        "rules", "--out", str(out), "--space", "payments", url=live_server.url, token=demo["token"]
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert "0 created, 0 updated, 0 removed, 15 unchanged" in second.stderr
    assert snapshot(out) == files
    check = run_cli("rules", "--out", str(out), "--check", url=live_server.url, token=demo["token"])
    assert check.returncode == 0, check.stderr
    assert "15 rule file(s) up to date." in check.stdout

    # The owner edits a record: --check fails, naming the files, and writes nothing.
    services.record_update(
        record=pci,
        actor=demo["ana"],
        expected_version=pci.version,
        changes={"summary": "Only services/cards may see full card numbers, ever."},
    )
    stale = run_cli("rules", "--out", str(out), "--check", url=live_server.url, token=demo["token"])
    assert stale.returncode == 1
    pci_name = f"contextkb-payments-{pci.key.lower()}"
    assert stale.stdout.splitlines() == [
        f"differs: {out}/.cursor/rules/{pci_name}.mdc",
        f"differs: {out}/.github/instructions/{pci_name}.instructions.md",
        f"differs: {out}/services/cards/AGENTS.md",
    ]
    assert "3 rule file(s) out of date" in stale.stderr
    assert snapshot(out) == files

    update = run_cli("rules", "--out", str(out), url=live_server.url, token=demo["token"])
    assert update.returncode == 0, update.stderr
    assert b"ever." in (out / "services/cards/AGENTS.md").read_bytes()

    # A record that leaves the rules (archived) leaves its files: --check calls them extra,
    # a run removes them; files not written by contextkb are never touched.
    (out / "services/api/NOTES.md").write_text("mine\n")
    services.record_archive(
        record=demo["records"]["The public API is REST with JSON and OpenAPI 3"],
        actor=User.objects.get(username="demo"),
    )
    extra = run_cli("rules", "--out", str(out), "--check", url=live_server.url, token=demo["token"])
    assert extra.returncode == 1
    assert f"extra: {out}/services/api/AGENTS.md" in extra.stdout
    removed = run_cli("rules", "--out", str(out), url=live_server.url, token=demo["token"])
    assert removed.returncode == 0, removed.stderr
    assert f"removed: {out}/services/api/AGENTS.md" in removed.stdout
    assert not (out / "services/api/AGENTS.md").exists()
    assert (out / "services/api/NOTES.md").read_text() == "mine\n"


def test_a_hand_written_file_in_the_way_stops_the_run_before_any_write(live_server, demo, tmp_path):
    out = tmp_path / "repo"
    (out / "services/billing").mkdir(parents=True)
    (out / "services/billing/AGENTS.md").write_text("# Our own notes\n")
    done = run_cli("rules", "--out", str(out), url=live_server.url, token=demo["token"])
    assert done.returncode == 8
    [error] = [line for line in done.stderr.splitlines() if "error" in line]
    assert error.startswith("contextkb: error: ")
    assert "services/billing/AGENTS.md exists and was not written by contextkb" in done.stderr
    # Nothing was written: no partial output.
    assert snapshot(out) == {"services/billing/AGENTS.md": b"# Our own notes\n"}
    check = run_cli("rules", "--out", str(out), "--check", url=live_server.url, token=demo["token"])
    assert check.returncode == 1
    assert f"not written by contextkb: {out}/services/billing/AGENTS.md" in check.stdout


def test_rules_bad_input_gives_one_line_and_the_documented_code(live_server, demo, tmp_path):
    out = str(tmp_path / "out")
    cases = [
        (run_cli("rules", "--out", out, token=demo["token"]), 3, "no server URL"),
        (run_cli("rules", "--out", out, url=live_server.url), 3, "no token"),
        (
            run_cli("rules", "--out", out, url="http://127.0.0.1:9", token=demo["token"]),
            4,
            "cannot reach http://127.0.0.1:9",
        ),
        (
            run_cli("rules", "--out", out, url=live_server.url, token="ckb_wrong"),
            5,
            "refused the token (401)",
        ),
        (
            run_cli(
                "rules", "--out", out, "--space", "nope", url=live_server.url, token=demo["token"]
            ),
            7,
            "Unknown space(s): nope.",
        ),
        (run_cli("rules", url=live_server.url, token=demo["token"]), 2, "--out"),
    ]
    (tmp_path / "a-file").write_text("x")
    cases.append(
        (
            run_cli("rules", "--out", str(tmp_path / "a-file"), url=live_server.url, token="t"),
            8,
            "is not a folder",
        )
    )
    for done, code, text in cases:
        assert done.returncode == code, (done.returncode, done.stderr)
        assert done.stdout == ""
        [error] = [line for line in done.stderr.splitlines() if "error" in line]
        assert error.startswith("contextkb: error: ") and text in error
    assert not Path(out).exists()


def test_the_client_writes_only_rule_files_inside_the_output_folder():
    import importlib
    import sys

    from tests.clients.test_cli import CLIENT_SRC

    sys.path.insert(0, str(CLIENT_SRC))
    try:
        rules = importlib.import_module("contextkb_cli.rules")
    finally:
        sys.path.remove(str(CLIENT_SRC))
    for path in (
        "AGENTS.md",
        "services/billing/AGENTS.md",
        "web app/AGENTS.md",
        ".cursor/rules/contextkb-payments-grd-1.mdc",
        ".github/instructions/contextkb-payments-grd-1.instructions.md",
    ):
        assert rules.check_path(path) == path
    for path in (
        "../AGENTS.md",
        "/etc/AGENTS.md",
        "C:/AGENTS.md",
        "a\\b/AGENTS.md",
        "a/../AGENTS.md",
        "a//AGENTS.md",
        "services/run.sh",
        ".cursor/rules/../../x.mdc",
        ".github/x.instructions.md",
        ".git/hooks/AGENTS.md\x00",
    ):
        with pytest.raises(rules.UnsafePath):
            rules.check_path(path)
