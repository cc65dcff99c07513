"""Routes of the web UI (namespace "web")."""

from django.urls import path, register_converter

from apps.web.views import account, editor, history, links, records, spaces


class RecordKeyConverter:
    """DEC-12, con-3: a kind prefix and a number, so other apps' /s/<slug>/<word>/ pages never
    collide with record URLs."""

    regex = "[A-Za-z]{3}-[0-9]{1,9}"

    def to_python(self, value: str) -> str:
        return value.upper()

    def to_url(self, value: str) -> str:
        return str(value)


register_converter(RecordKeyConverter, "recordkey")

app_name = "web"

R = "s/<slug:slug>/<recordkey:key>/"

urlpatterns = [
    path("", spaces.space_list, name="space_list"),
    path("spaces/new/", spaces.space_create, name="space_create"),
    path("search/", spaces.search, name="search"),
    path("me/password/", account.PasswordChangeView.as_view(), name="password_change"),
    path(
        "me/password/done/", account.PasswordChangeDoneView.as_view(), name="password_change_done"
    ),
    path("preview/", editor.markdown_preview, name="preview"),
    path("s/<slug:slug>/", spaces.space_home, name="space_home"),
    path("s/<slug:slug>/members/", spaces.space_members, name="space_members"),
    path("s/<slug:slug>/members/<int:user_id>/role/", spaces.member_role, name="member_role"),
    path("s/<slug:slug>/members/<int:user_id>/remove/", spaces.member_remove, name="member_remove"),
    path("s/<slug:slug>/new/", editor.record_create, name="record_create"),
    path(R, records.record_detail, name="record_detail"),
    path(R + "edit/", editor.record_edit, name="record_edit"),
    path(R + "supersede/", editor.record_supersede, name="record_supersede"),
    path(R + "verify/", records.record_verify, name="record_verify"),
    path(R + "archive/", records.record_archive, name="record_archive"),
    path(R + "links/", links.link_add, name="link_add"),
    path(R + "links/search/", links.link_search, name="link_search"),
    path(R + "links/<int:link_id>/remove/", links.link_remove, name="link_remove"),
    path(R + "history/", history.record_history, name="record_history"),
    path(R + "history/<int:number>/", history.revision_detail, name="revision_detail"),
    path(R + "history/<int:number>/restore/", history.revision_restore, name="revision_restore"),
    path(R + "graph/", history.record_graph, name="record_graph"),
]
