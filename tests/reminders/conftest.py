import pytest

from apps.accounts.models import Membership
from tests.factories import MembershipFactory


@pytest.fixture(autouse=True)
def _reminder_settings(settings):
    settings.SITE_URL = "http://testserver"
    settings.REMINDERS_DIGEST_HOUR = 0
    settings.DRIFT_WEBHOOK_SECRET = "s3cret-for-tests"


@pytest.fixture
def space_admin(space):
    return MembershipFactory(space=space, role=Membership.Role.ADMIN, user__username="boss").user


class _Inbox:
    """What a real SMTP server (aiosmtpd) received, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook
        import email
        import email.policy

        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"

    def parts(self, message) -> tuple[str, str]:
        """(text, html) of a multipart message, text with plain newlines."""
        text = message.get_body(preferencelist=("plain",)).get_content()
        html = message.get_body(preferencelist=("html",)).get_content()
        return text.replace("\r\n", "\n"), html


@pytest.fixture
def smtp_inbox(settings):
    """Django sends through SMTP to an aiosmtpd server in this process; yields its inbox."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "use_tls": False, "timeout": 10},
        }
    }
    yield inbox
    controller.stop()
