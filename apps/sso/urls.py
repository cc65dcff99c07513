"""/sso/<provider id>/login/ (the button) and /sso/<provider id>/callback/ (the redirect URI).

The names are allauth's, so its OpenID Connect code builds the same redirect URI."""

from django.urls import path

from apps.sso import views

urlpatterns = [
    path("<slug:provider_id>/login/", views.login, name="openid_connect_login"),
    path("<slug:provider_id>/callback/", views.callback, name="openid_connect_callback"),
]
