"""A space's chat channel (Slack or Teams), each person's email/chat choice, and the Slack
interactions already handled (replays are refused)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.models import Space


class ChatChannel(models.Model):
    """Where a space's chat notifications go; the webhook URL or bot token is stored sealed."""

    class Platform(models.TextChoices):
        SLACK_WEBHOOK = "slack_webhook", "Slack (incoming webhook)"
        SLACK_BOT = "slack_bot", "Slack (bot token and channel)"
        TEAMS = "teams", "Microsoft Teams (workflow webhook)"

    space = models.OneToOneField(Space, on_delete=models.CASCADE, related_name="chat_channel")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    # Fernet-sealed (apps.interchange.sync.seal): a webhook URL, or a Slack bot token.
    sealed_secret = models.TextField()
    # The last characters of the secret, so an admin can tell which one is stored.
    secret_hint = models.CharField(max_length=8, blank=True)
    # chat.postMessage's channel (an ID such as C0123ABCD), for the bot token platform only.
    slack_channel = models.CharField(max_length=80, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.space}: {self.get_platform_display()}"

    @property
    def is_slack(self) -> bool:
        return self.platform in (self.Platform.SLACK_WEBHOOK, self.Platform.SLACK_BOT)

    @property
    def platform_name(self) -> str:
        return "Slack" if self.is_slack else "Teams"


class ChatPreference(models.Model):
    """How a person wants reminders: email (the default without a row), chat, or both."""

    class NotifyBy(models.TextChoices):
        EMAIL = "email", "Email only"
        CHAT = "chat", "Chat only (in each space's channel)"
        BOTH = "both", "Email and chat"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_preference"
    )
    notify_by = models.CharField(max_length=8, choices=NotifyBy.choices, default=NotifyBy.EMAIL)
    # The person's Slack member ID (U0123ABCD): mentioned in their messages, and the only Slack
    # user whose button clicks act for them.
    slack_user_id = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.notify_by}"


class SlackInteraction(models.Model):
    """A Slack interactive callback that was handled; the same one again is refused."""

    # The request's v0 signature (unique per timestamp and body) or Slack's trigger_id.
    key = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # Pruning entries older than the accepted timestamp window.
            models.Index(fields=["received_at"], name="chat_interaction_received_idx"),
        ]

    def __str__(self) -> str:
        return self.key[:16]
