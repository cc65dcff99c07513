from django import template

register = template.Library()


@register.filter
def record_url(record) -> str:
    return record.get_absolute_url()


@register.filter
def record_edit_url(record) -> str:
    return record.get_edit_url()


# Inline styles for emails (mail clients ignore stylesheets); the web UI uses static CSS.
EMAIL_BADGE = {
    "fresh": ("#137a4b", "#e6f6ee"),
    "due": ("#9a5b00", "#fff4df"),
    "stale": ("#b42318", "#fee9e7"),
    "suspect": ("#7a2bc2", "#f3e8ff"),
}


@register.filter
def email_badge_style(state: str) -> str:
    colour, background = EMAIL_BADGE.get(state, ("#3b4656", "#eef1f5"))
    return (
        f"display:inline-block;padding:2px 8px;border-radius:999px;font-size:12px;"
        f"font-weight:600;line-height:18px;color:{colour};background:{background};"
    )
