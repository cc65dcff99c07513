from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from apps.accounts.models import Space


def healthz(request: HttpRequest) -> JsonResponse:
    """Process is up (no dependencies checked)."""
    return JsonResponse({"status": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    spaces = Space.objects.visible_to(request.user)
    return render(request, "core/home.html", {"spaces": spaces})
