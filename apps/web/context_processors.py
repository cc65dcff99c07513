"""Site-wide template context: the navigation, built only from pages that exist."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse

from apps.accounts.models import Space

# (label, url name). Other apps' pages appear once their URL names resolve, so the menu never
# links to a page that is not there. SPACE_ITEMS take the current space's slug.
GLOBAL_ITEMS = [
    ("Spaces", "web:space_list"),
    ("Search", "web:search"),
    ("Review queue", "reminders:review_queue"),
    ("Health", "reminders:health"),
    ("Gaps", "retrieval:gaps"),
]
SPACE_ITEMS = [
    ("Records", "web:space_home"),
    ("Gaps", "retrieval:space_gaps"),
    ("Health", "reminders:space_health"),
    ("Import", "interchange:import"),
    ("Agents", "agents:space_agents"),
    ("Members", "web:space_members"),
]
USER_ITEMS = [
    # Every registered agent you can see (each space's menu lists that space's agents).
    ("Agents", "agents:list"),
    ("API tokens", "accounts:tokens"),
    ("Email reminders", "reminders:settings"),
    ("Change password", "web:password_change"),
]


def _url(name: str, kwargs: dict | None = None) -> str | None:
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def navigation(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    path = request.path
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match else None
    nav = []
    for label, name in GLOBAL_ITEMS:
        url = _url(name)
        if url:
            current = path == url if url == "/" else path.startswith(url)
            nav.append({"label": label, "url": url, "current": current})
    space_nav = []
    nav_space = None
    if slug:
        nav_space = Space.objects.visible_to(request.user).filter(slug=slug).first()
    if nav_space is not None:
        for label, name in SPACE_ITEMS:
            url = _url(name, {"slug": slug})
            if url:
                space_nav.append({"label": label, "url": url, "current": path == url})
    user_nav = [{"label": label, "url": url} for label, name in USER_ITEMS if (url := _url(name))]
    return {"nav_items": nav, "space_nav": space_nav, "nav_space": nav_space, "user_nav": user_nav}
