from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Process is up (no dependencies checked)."""
    return JsonResponse({"status": "ok"})
