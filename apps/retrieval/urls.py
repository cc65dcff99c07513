from django.urls import path

from apps.retrieval import views

app_name = "retrieval"

urlpatterns = [
    path("spaces/<slug:slug>/gaps/", views.space_gaps, name="space_gaps"),
    path("spaces/<slug:slug>/gaps/<int:gap_id>/dismiss/", views.gap_dismiss, name="gap_dismiss"),
]
