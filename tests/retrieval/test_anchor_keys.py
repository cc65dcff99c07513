"""The anchor-key prefilter of the path list never drops a record whose anchor matches a path."""

import itertools

import pytest
from django.db import connection

from apps.records import anchors
from apps.retrieval.search import path_keys

GLOBS = [
    "services/billing/**",
    "services/billing",
    "services/billing/",
    "./services/billing/*.py",
    "/services/billing/api.py",
    "services\\billing\\**",
    "services/*/api.py",
    "services/bil*",
    "services/billing/v?/handler.py",
    "**/migrations/**",
    "**/*.sql",
    "*.md",
    "**",
    "/",
    "docs/adr/0001-use-postgres.md",
    "web-ui",
    "a+b/c(d)/[x]/{y}/$z^.txt",
    "dir with spaces/**",
    "ünïcode/пути/**",
    "deep/a/b/c/d/**/e/*",
]
PATHS = [
    "services/billing",
    "services/billing/",
    "services/billing/api.py",
    "services/billing/v2/handler.py",
    "services/billing/deep/er/x.py",
    "services/billingx/api.py",
    "services/search/api.py",
    "services/bill.py",
    "app/migrations/0001.py",
    "db/schema.sql",
    "schema.sql",
    "README.md",
    "docs/README.md",
    "docs/adr/0001-use-postgres.md",
    "docs/adr/0001-use-postgres.md/x",
    "web-ui",
    "web-ui/src/main.ts",
    "a+b/c(d)/[x]/{y}/$z^.txt",
    "dir with spaces/file.txt",
    "ünïcode/пути/файл.py",
    "deep/a/b/c/d/x/y/e/f",
    "",
]


def _keys(patterns: list[str]) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT retrieval_anchor_keys(%s::text[])", [patterns])
        return set(cursor.fetchone()[0])


@pytest.mark.django_db
def test_every_matching_path_shares_a_key_with_the_anchor():
    checked = 0
    for glob, path in itertools.product(GLOBS, PATHS):
        path = anchors.normalise_path(path)
        if anchors.matches(glob, path):
            keys = _keys(anchors.compile_anchors([glob]))
            assert keys & set(path_keys(path)), (glob, path, keys)
            checked += 1
    assert checked >= 30


@pytest.mark.django_db
def test_keys_are_narrow_enough_to_help():
    # Folder anchors get their folder as the key, so other folders' records are not checked.
    assert _keys(anchors.compile_anchors(["services/billing/**"])) == {"services/billing/"}
    assert _keys(anchors.compile_anchors(["services/*/api.py"])) == {"services/"}
    assert _keys(anchors.compile_anchors(["**/*.sql", "web-ui"])) == {"", "web-ui/"}
    assert "services/search/" not in path_keys("services/billing/api.py")
