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
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.reminders.urls")),
    # The web UI; "home" is its space list.
    path("", web_spaces.space_list, name="home"),
    path("", include("apps.interchange.urls")),
    path("", include("apps.web.urls")),
    path("", include("apps.retrieval.urls")),
    path("", include("apps.agents.urls")),
]

# Error pages in the site's layout.
handler403 = web_account.forbidden
handler404 = web_account.not_found
