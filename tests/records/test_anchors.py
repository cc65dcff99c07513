import pytest

from apps.records.anchors import glob_to_regex, matches
from apps.records.models import Record
from tests.factories import make_record


@pytest.mark.parametrize(
    ("anchor", "path", "expected"),
    [
        ("services/billing/**", "services/billing/api.py", True),
        ("services/billing/**", "services/billing/v2/deep/file.py", True),
        ("services/billing/**", "services/billing", True),
        ("services/billing/**", "services/billingx/api.py", False),
        ("services/billing", "services/billing/api.py", True),
        ("services/billing", "services/billing-old/api.py", False),
        ("**/migrations/**", "apps/records/migrations/0001_initial.py", True),
        ("**/migrations/**", "migrations/0001.py", True),
        ("**/migrations/**", "apps/records/models.py", False),
        ("*.sql", "schema.sql", True),
        ("*.sql", "db/schema.sql", False),
        ("db/*.sql", "db/schema.sql", True),
        ("db/?.sql", "db/a.sql", True),
        ("services/**/clients/*.py", "services/payouts/clients/bank.py", True),
        ("services/**/clients/*.py", "services/clients/bank.py", True),
        ("services/**/clients/*.py", "services/payouts/clients/sub/bank.py", False),
        ("./web/app.js", "/web/app.js", True),
        ("billing-service", "billing-service", True),
        ("a+b(c)", "a+b(c)", True),
        ("a+b(c)", "aab(c)", False),
    ],
)
def test_anchor_globs_match_paths_like_gitignore_users_expect(anchor, path, expected):
    assert matches(anchor, path) is expected


@pytest.mark.django_db
def test_postgres_evaluates_the_same_patterns_as_python(space, owner):
    billing = make_record(space=space, actor=owner, anchors=["services/billing/**"])
    migrations = make_record(space=space, actor=owner, anchors=["**/migrations/**", "a+b(c)"])
    make_record(space=space, actor=owner, anchors=[])
    hits = Record.objects.anchored_to(["services/billing/api.py"])
    assert list(hits) == [billing]
    hits = Record.objects.anchored_to(["x/migrations/1.py", "services/billing/x"])
    assert set(hits) == {billing, migrations}
    assert list(Record.objects.anchored_to("a+b(c)")) == [migrations]
    assert not Record.objects.anchored_to([]).exists()


@pytest.mark.django_db
def test_editing_anchors_updates_what_the_record_is_anchored_to(space, owner):
    from apps.records import services

    record = make_record(space=space, actor=owner, anchors=["web/**"])
    services.record_update(
        record=record, actor=owner, expected_version=1, changes={"anchors": ["api/**"]}
    )
    assert not Record.objects.anchored_to("web/index.html").exists()
    assert Record.objects.anchored_to("api/urls.py").get() == record
    assert glob_to_regex("api/**") in Record.objects.get(pk=record.pk).anchor_patterns


@pytest.mark.django_db
def test_every_front_door_stores_anchors_from_the_repository_root(space, owner):
    """The rule lives in the services, so the API, MCP and imports get it as the editor does."""
    from apps.core.errors import InvalidInput
    from apps.records import services

    record = make_record(
        space=space, actor=owner, anchors=["/services/billing/**", "web\\static\\*.js", "./docs"]
    )
    assert record.anchors == ["services/billing/**", "web/static/*.js", "docs"]
    with pytest.raises(InvalidInput) as refused:
        services.record_update(
            record=record,
            actor=owner,
            expected_version=record.version,
            changes={"anchors": ["C:\\Users\\me\\repo\\billing"]},
        )
    assert "is a path on one computer" in refused.value.details["anchors"][0]
    record.refresh_from_db()
    assert record.anchors == ["services/billing/**", "web/static/*.js", "docs"]
