from django.urls import path

from apps.reminders import views

app_name = "reminders"

urlpatterns = [
    path("health", views.health, name="health"),
    path("spaces/<slug:slug>/health", views.space_health, name="space_health"),
    path("review/", views.review_queue, name="review_queue"),
    path("review/<int:pk>/verify", views.review_verify, name="review_verify"),
    path("review/<int:pk>/assign", views.review_assign, name="review_assign"),
    path("review/<int:pk>/not-mine", views.review_not_mine, name="review_not_mine"),
    path("settings/reminders/", views.digest_settings, name="settings"),
    path("r/still-true/<str:token>/", views.still_true, name="still_true"),
    path("r/not-mine/<str:token>/", views.not_mine, name="not_mine"),
    path("r/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
