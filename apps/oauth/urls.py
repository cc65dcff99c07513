"""OAuth 2.1 for remote MCP: discovery at the site root, the endpoints under /oauth/.

The namespace is django-oauth-toolkit's own, because its metadata views reverse their
endpoints by those names.
"""

from django.urls import path
from oauth2_provider import views as dot_views
from oauth2_provider.urls import metadata_urlpatterns

from apps.oauth import views

app_name = "oauth2_provider"

urlpatterns = [
    # RFC 8414 and RFC 9728 (root and path-suffixed forms, e.g. .../oauth-protected-resource/mcp).
    *metadata_urlpatterns,
    path("oauth/authorize/", views.ConsentView.as_view(), name="authorize"),
    path("oauth/token/", dot_views.TokenView.as_view(), name="token"),
    path("oauth/revoke/", dot_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth/register/", views.RegistrationView.as_view(), name="dcr-register"),
    path(
        "oauth/register/<str:client_id>/",
        dot_views.DynamicClientRegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
]
