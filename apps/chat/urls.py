from django.urls import path

from apps.chat import views

app_name = "chat"

urlpatterns = [
    path("s/<slug:slug>/chat/", views.space_chat, name="space_chat"),
    path("chat/slack/interactivity", views.slack_interactivity, name="slack_interactivity"),
]
