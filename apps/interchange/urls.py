"""Routes of the import/export pages (namespace "interchange")."""

from django.urls import path

from apps.interchange import views

app_name = "interchange"

urlpatterns = [
    path("s/<slug:slug>/import/", views.import_page, name="import"),
    path("s/<slug:slug>/export.zip", views.export_zip, name="export"),
    path("s/<slug:slug>/sync/", views.sync_page, name="sync"),
    path("imports/<uuid:uid>/", views.job_page, name="job"),
]
