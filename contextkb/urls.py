"""URL routes: the web UI at /, the REST API at /api/v1/, the admin at /admin/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.audit.forms import (
    LockoutAwareAdminAuthenticationForm,
    LockoutAwareAuthenticationForm,
)
from apps.core import views as core_views
from apps.web.views import account as web_account
from apps.web.views import spaces as web_spaces

# A database outage anywhere in the stack answers 503, not 500.
handler500 = "apps.core.views.server_error"
# The admin's sign-in page says so when an account or address is locked out, like the site's.
admin.site.login_form = LockoutAwareAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LockoutAwareAuthenticationForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/", include("apps.api.urls")),
    # OAuth 2.1 for remote MCP: /.well-known/oauth-* and /oauth/… (apps.oauth).
    path("", include("apps.oauth.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.reminders.urls")),
    path("", include("apps.chat.urls")),
    # The web UI; "home" is its space list.
    path("", web_spaces.space_list, name="home"),
    path("", include("apps.interchange.urls")),
    path("", include("apps.web.urls")),
    path("", include("apps.retrieval.urls")),
    path("", include("apps.agents.urls")),
]

# --- single sign-on (apps.sso): /sso/<id>/login|callback/, and the sign-in page and the admin's
# sign-in form that add the SSO button and the SSO_LOCAL_LOGIN rule (first, so they win).
from apps.sso import views as sso_views  # noqa: E402
from apps.sso.forms import LocalAdminLoginForm  # noqa: E402

admin.site.login_form = LocalAdminLoginForm
urlpatterns = [
    path("accounts/login/", sso_views.LoginView.as_view(), name="login"),
    path("sso/", include("apps.sso.urls")),
    *urlpatterns,
]

# Error pages in the site's layout.
handler403 = web_account.forbidden
handler404 = web_account.not_found
