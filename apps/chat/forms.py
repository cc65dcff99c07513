from django import forms

from apps.chat.models import ChatChannel


class ChannelForm(forms.Form):
    """A space's chat channel. Secrets are write-only: the field is empty on every page load."""

    platform = forms.ChoiceField(choices=ChatChannel.Platform.choices, widget=forms.RadioSelect)
    webhook_url = forms.CharField(
        required=False,
        max_length=2000,
        label="Webhook URL",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Slack: Incoming Webhooks → Add New Webhook. Teams: the workflow's "
        '"When a Teams webhook request is received" URL. Leave empty to keep the stored one.',
    )
    bot_token = forms.CharField(
        required=False,
        max_length=300,
        label="Slack bot token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="xoxb-…, with the chat:write scope. Leave empty to keep the stored one.",
    )
    slack_channel = forms.CharField(
        required=False, max_length=80, label="Slack channel ID", help_text="Such as C0123ABCD."
    )
