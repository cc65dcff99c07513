"""The escalation email: templates/emails/agent-escalation-subject.txt, -body.txt, -body.html."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from apps.agents.models import Escalation
from apps.core.links import absolute_url


def escalation(*, escalation: Escalation) -> str:
    """One message to the guardrail's contact (every member of a team on one message)."""
    agent = escalation.agent
    record = escalation.guardrail
    context = {
        "escalation": escalation,
        "agent": agent,
        "record": record,
        "record_url": absolute_url(record.get_absolute_url()),
        "agent_url": absolute_url(reverse("agents:detail", args=[agent.slug])),
        "site_url": settings.SITE_URL,
    }
    subject = " ".join(render_to_string("emails/agent-escalation-subject.txt", context).split())
    text = render_to_string("emails/agent-escalation-body.txt", context)
    html = render_to_string("emails/agent-escalation-body.html", context)
    message_id = f"<escalation-{escalation.pk}-{escalation.dedupe_key[-12:]}@contextkb>"
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.REMINDERS_FROM_EMAIL,
        to=list(escalation.recipients),
        headers={"Message-ID": message_id},
    )
    message.attach_alternative(html, "text/html")
    message.send()
    return message_id
