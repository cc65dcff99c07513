"""Routes of the Agents pages and the proposal review (namespace "agents")."""

from django.urls import path

from apps.agents import views

app_name = "agents"

urlpatterns = [
    path("agents/", views.agent_list, name="list"),
    path("agents/new/", views.agent_create, name="create"),
    path("agents/<slug:slug>/", views.agent_detail, name="detail"),
    path("agents/<slug:slug>/edit/", views.agent_edit, name="edit"),
    path("agents/<slug:slug>/disable/", views.agent_disable, name="disable"),
    path("agents/<slug:slug>/tokens/", views.token_create, name="token_create"),
    path(
        "agents/<slug:slug>/tokens/<int:token_id>/revoke/",
        views.token_revoke,
        name="token_revoke",
    ),
    path("s/<slug:slug>/agents/", views.space_agents, name="space_agents"),
    path("proposals/", views.proposal_queue, name="proposals"),
    path("proposals/<int:pk>/", views.proposal_review, name="proposal_review"),
]
