"""URL routes: the web UI at /, the REST API at /api/v1/, the admin at /admin/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from apps.core import views as core_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", core_views.healthz, name="healthz"),
    path("", core_views.home, name="home"),
]
