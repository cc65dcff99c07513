"""Runs every `sh` example in docs/api.md with curl against a live server and checks the answers
shown after it (JSON: the documented keys must match; text: the lines must appear)."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from apps.accounts.models import ApiToken, Membership
from tests.factories import MembershipFactory, SpaceFactory, make_token

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SEPARATOR = "@@ckb-example-end@@"


def examples() -> list[tuple[str, str, str]]:
    """(command, expected language, expected text) for every sh block, in order."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    out = []
    for i, (lang, text) in enumerate(blocks):
        if lang != "sh":
            continue
        follow = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
        expected = follow if follow[0] in ("json", "text") else ("", "")
        out.append((text, *expected))
    return out


def contains(actual, expected, where="$") -> None:
    """Every key and value written in the guide is in the real answer."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} in {actual!r}"
            contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual)
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            contains(a, e, f"{where}[{n}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_guide_has_examples_with_answers():
    found = examples()
    assert len(found) >= 15
    assert all(lang for _, lang, _ in found)


@pytest.mark.django_db(transaction=True)
def test_curl_examples_in_the_api_guide_work(live_server):
    space = SpaceFactory(slug="payments", name="Payments")
    alice = MembershipFactory(space=space, role=Membership.Role.EDITOR, user__username="alice").user
    SpaceFactory(slug="search")  # exists, but the token is not scoped to it
    _, token = make_token(alice, scope=ApiToken.Scope.READ_WRITE, spaces=[space])

    found = examples()
    script = "\n".join(f"{command}\necho\necho {SEPARATOR}" for command, _, _ in found)
    env = {**os.environ, "CKB_URL": live_server.url, "CKB_TOKEN": token}
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outputs = result.stdout.split(SEPARATOR + "\n")
    assert len(outputs) == len(found) + 1
    for (command, lang, expected), output in zip(found, outputs, strict=False):
        if lang == "json":
            contains(json.loads(output), json.loads(expected), where=command.split("\n")[0])
        else:
            lines = [line.strip() for line in output.replace("\r", "").splitlines()]
            for line in expected.strip().splitlines():
                assert line.strip() in lines, (command, output)
