"""The Tokens page: create (plain token shown once), list and revoke API tokens."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import F
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.models import ApiToken, Space
from apps.core.errors import InvalidInput
from apps.core.types import AuthenticatedHttpRequest


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “Cursor on my laptop”.")
    scope = forms.ChoiceField(choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    spaces = forms.ModelMultipleChoiceField(
        queryset=Space.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every space you are a member of.",
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        label="Expires in (days)",
        help_text="Empty: never expires.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["spaces"].queryset = Space.objects.visible_to(user).filter(
            memberships__user=user
        )


# The plain text of a just-created token waits here for the one page view that shows it.
NEW_TOKEN_SESSION_KEY = "accounts:new-api-token"  # noqa: S105 - a session key name


@login_required
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TokenForm(request.POST, user=request.user)
        if form.is_valid():
            days = form.cleaned_data["expires_in_days"]
            try:
                token, plain = services.token_create(
                    user=request.user,
                    name=form.cleaned_data["name"],
                    scope=form.cleaned_data["scope"],
                    spaces=form.cleaned_data["spaces"],
                    expires_at=timezone.now() + dt.timedelta(days=days) if days else None,
                )
            except InvalidInput as exc:
                for field, problems in exc.details.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                # Post/redirect/get: reloading the page must not create a second token.
                request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "plain": plain}
                return redirect("accounts:tokens")
    else:
        form = TokenForm(user=request.user)
    created = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    token_list = (
        ApiToken.objects.filter(user=request.user)
        .prefetch_related("spaces")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
    )
    response = render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": token_list,
            "plain_token": created["plain"] if created else None,
            "new_token_id": created["id"] if created else None,
            "site_url": settings.SITE_URL,
            "now": timezone.now(),
        },
    )
    # The page may show a secret: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("accounts:tokens")
