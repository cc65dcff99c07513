"""REST API routes: /api/v1/… plus the OpenAPI schema and its docs page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from apps.api import base, changes, context, drift, links, me, proposals, records, spaces

app_name = "api"

router = DefaultRouter()
router.register("spaces", spaces.SpaceViewSet, basename="space")
router.register("records", records.RecordViewSet, basename="record")
router.register("links", links.LinkViewSet, basename="link")

urlpatterns = [
    path("v1/me/", me.MeView.as_view(), name="me"),
    # --- other areas: one line each (a module in apps/api/, e.g. context.py) -------------------
    path("v1/context/", include(context.urlpatterns)),
    path("v1/drift/", include(drift.urlpatterns)),
    path("v1/changes/", include(changes.urlpatterns)),
    path("v1/rules/", include("apps.api.rules")),
    path("v1/import/", include("apps.api.imports")),
    path("v1/sync/", include("apps.api.sync")),
    path("v1/proposals/", include(proposals.urlpatterns)),
    # --- end of other areas ----------------------------------------------------------------------
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # Anything else under /api/ is a JSON 404, not the site's HTML page. Keep this last.
    re_path(r"^.*$", base.not_found),
]
