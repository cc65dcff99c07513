"""Context API defects an AI client hit (issue 12): `space` ignored, excerpts that ran lines
together, and what bad input does (a clear 400 and nothing written)."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Membership
from apps.retrieval import services as retrieval_services
from apps.retrieval.models import ContextRequest, Gap
from tests.factories import MembershipFactory, SpaceFactory, make_record, make_token

URL = "/api/v1/context/"


@pytest.fixture
def two_spaces(space, owner):
    """The owner's token sees two spaces with records on the same subject."""
    ops = SpaceFactory(name="Operations", slug="ops")
    MembershipFactory(space=ops, user=owner, role=Membership.Role.EDITOR)
    here = make_record(space=space, actor=owner, title="Retry failed payments with backoff")
    there = make_record(space=ops, actor=owner, title="Retry failed deployments with backoff")
    retrieval_services.embed_records(record_ids=[here.pk, there.pk])
    _, plain = make_token(owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client, here, there


def _keys(body):
    return {(i["space"], i["key"]) for i in body["items"]}


def test_space_is_an_alias_of_spaces_not_ignored(two_spaces):
    client, here, there = two_spaces
    everywhere = client.get(URL, {"q": "retry failed with backoff"}).json()
    assert _keys(everywhere) == {("payments", here.key), ("ops", there.key)}

    one = client.get(URL, {"q": "retry failed with backoff", "space": "ops"}).json()
    assert one["spaces"] == ["ops"]
    assert _keys(one) == {("ops", there.key)}

    posted = client.post(
        URL, {"q": "retry failed with backoff", "space": "payments"}, format="json"
    ).json()
    assert posted["spaces"] == ["payments"]
    assert _keys(posted) == {("payments", here.key)}

    # Both spellings together: the spaces named by either.
    both = client.get(URL, {"q": "retry failed", "space": "ops", "spaces": "payments"}).json()
    assert both["spaces"] == ["ops", "payments"]


def test_an_unknown_space_under_either_name_is_a_400_naming_spaces(two_spaces, other_space):
    client, _, _ = two_spaces
    for name in ("space", "spaces"):
        for slug in ("no-such-space", other_space.slug):  # missing, or not this token's
            response = client.get(URL, {"q": "retry", name: slug})
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["code"] == "invalid"
            assert slug in error["message"] and "spaces" in error["details"]


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 2001},
        {"q": "retry", "space": "no-such-space"},
        {"q": "retry", "space": ["payments", 5]},
        {"q": "retry", "max_tokens": -1},
        {"q": "retry", "max_tokens": 10**12},
    ],
)
def test_bad_input_gets_the_json_error_and_writes_nothing(api, add, usage_log, params):
    add("Retry failed payments with backoff")
    responses = [api.post(URL, params, format="json")]
    if not any(isinstance(v, list) for v in params.values()):
        responses.append(api.get(URL, params))
    for response in responses:
        assert response.status_code == 400
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert usage_log == []
    assert ContextRequest.objects.count() == 0 and Gap.objects.count() == 0


BODY = """## Context
Payments fail for many reasons. Most are temporary.

| code | meaning | retry |
|---|---|---|
| 402 | card declined | no |
| 503 | provider down | yes |

## Decision
- Retry after 1 minute.
- Then after 10 minutes.
- Then give up and tell the customer.

## Consequences
""" + " ".join(f"Detail {i} about the retry schedule and its alerts." for i in range(80))


def test_excerpts_keep_the_line_structure_of_the_body(api, add):
    record = add("Retry schedule for failed payments", summary="Three tries.", body=BODY)

    body = api.get(URL, {"q": "retry schedule failed payments", "max_tokens": 300}).json()

    item = next(i for i in body["items"] if i["key"] == record.key)
    assert item["content"] == "excerpt"
    text = item["text"]
    assert text.endswith(" […]")
    # Headings, table rows and list items are on lines of their own, as written.
    assert "## Context\nPayments fail for many reasons." in text
    assert "| 402 | card declined | no |\n| 503 | provider down | yes |" in text
    assert "\n- Retry after 1 minute.\n- Then after 10 minutes.\n" in text
    assert BODY.startswith(text.removesuffix(" […]"))
    markdown = api.get(
        URL, {"q": "retry schedule failed payments", "max_tokens": 300, "format": "markdown"}
    ).content.decode()
    assert "\n## Decision\n- Retry after 1 minute.\n" in markdown


def test_an_excerpt_that_cuts_a_code_block_closes_it(api, add):
    code = "\n".join(f"retry_{i} = schedule({i})" for i in range(200))
    body = f"Use the helper below.\n\n```python\n{code}\n```\n\nThat is all."
    record = add("Retry helper for failed payments", summary="The helper.", body=body)

    found = api.get(URL, {"q": "retry helper failed payments", "max_tokens": 200}).json()

    item = next(i for i in found["items"] if i["key"] == record.key)
    assert item["content"] == "excerpt"
    assert item["text"].startswith("Use the helper below.\n\n```python\nretry_0 = schedule(0)\n")
    assert item["text"].endswith(" […]\n```")
