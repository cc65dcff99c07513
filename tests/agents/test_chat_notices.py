"""Agent escalations and proposals reach the space's chat channel once each (issue 16: chat
carries proposals and agent escalations), through the same delivery rows as the digests, and
arrive at a local Slack sink with the documented Block Kit payload."""

import pytest

from apps.agents import services
from apps.chat import services as chat
from apps.reminders import tasks
from apps.reminders.models import Delivery
from tests.chat.conftest import sink  # noqa: F401 - the local Slack/Teams sink
from tests.factories import make_record

pytestmark = pytest.mark.django_db

HOOK = "/services/T0/B0/agentnotices"


@pytest.fixture(autouse=True)
def _chat(settings):
    settings.CHAT_ALLOW_HTTP = True
    settings.CHAT_WEBHOOK_HOSTS = ["127.0.0.1"]
    settings.CHAT_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def channel(space, admin_user, sink):  # noqa: F811
    chat.channel_save(
        space=space, actor=admin_user, platform="slack_webhook", webhook_url=sink.url + HOOK
    )
    return sink


def _send_notices() -> list[str]:
    return [
        tasks.send_delivery.run(pk)
        for pk in Delivery.objects.filter(kind=Delivery.Kind.NOTICE).values_list("pk", flat=True)
    ]


def _texts(sink) -> str:  # noqa: F811
    return "\n".join(str(r["json"]) for r in sink.accepted(HOOK))


def test_an_escalation_is_posted_to_the_channel_once_however_often_the_agent_retries(
    agent_token, space, owner, channel, django_capture_on_commit_callbacks
):
    token, _ = agent_token
    guardrail = make_record(
        space=space,
        actor=owner,
        owner_user=owner,
        kind="guardrail",
        title="Never retry a charge twice",
        anchors=["services/billing/**"],
        status="accepted",
    )
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(3):
            services.escalation_create(
                token=token,
                guardrail_key=guardrail.key,
                action="retry the failed charge",
                why="the customer asked twice",
                idempotency_key="run-7",
            )
    assert Delivery.objects.filter(kind=Delivery.Kind.NOTICE).count() == 1
    assert _send_notices() == ["sent"]
    _send_notices()  # a redelivered task: the row is sent already
    assert len(channel.accepted(HOOK)) == 1
    text = _texts(channel)
    assert "Billing bot escalates on " + guardrail.key in text
    assert "retry the failed charge" in text


def test_a_proposal_is_posted_with_a_link_to_its_review_page(agent_token, space, owner, channel):
    token, _ = agent_token
    proposal = services.proposal_new_record(
        token=token,
        space=space.slug,
        kind="guardrail",
        title="Cap billing retries at three",
        body="Three attempts, then a human.",
        anchors=["services/billing/retry.py"],
        rationale="Seen four retries in one incident.",
    )
    assert _send_notices() == ["sent"]
    text = _texts(channel)
    assert "Billing bot proposes a new guardrail: Cap billing retries at three" in text
    assert f"http://testserver/proposals/{proposal.pk}/" in text
