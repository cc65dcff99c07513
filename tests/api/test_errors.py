"""Bad input gets a 4xx in the one error shape, and changes nothing."""

import pytest

from apps.records.models import Record, Revision
from tests.api.conftest import MODEL_BACKEND, bearer
from tests.factories import make_record

pytestmark = pytest.mark.django_db


def _error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def _post_raw(api, path, data, token, content_type="application/json"):
    return api.generic("POST", path, data, content_type=content_type, **bearer(token))


def test_malformed_json_is_a_parse_error_and_creates_nothing(api, space, rw_token):
    response = _post_raw(api, "/api/v1/records/", b'{"space": "payments", "kind": ', rw_token)
    _error(response, 400, "parse_error")
    assert Record.objects.count() == 0


def test_invalid_utf8_is_rejected(api, space, rw_token):
    body = b'{"space": "payments", "kind": "decision", "title": "caf\xe9"}'
    error = _error(_post_raw(api, "/api/v1/records/", body, rw_token), 400, "parse_error")
    assert "UTF-8" in error["message"]
    assert Record.objects.count() == 0


def test_nul_characters_and_nan_are_rejected(api, space, rw_token):
    nul = b'{"space": "payments", "kind": "decision", "title": "a\\u0000b"}'
    _error(_post_raw(api, "/api/v1/records/", nul, rw_token), 400, "parse_error")
    nan = b'{"space": "payments", "kind": "decision", "title": "x", "tags": NaN}'
    _error(_post_raw(api, "/api/v1/records/", nan, rw_token), 400, "parse_error")
    assert Record.objects.count() == 0


def test_wrong_types_unknown_fields_and_bad_enums_name_the_field(api, space, rw_token):
    base = {"space": "payments", "kind": "decision", "title": "Use Postgres"}
    cases = [
        ({**base, "tags": "billing"}, "tags"),
        ({**base, "title": ["a"]}, "title"),
        ({**base, "colour": "blue"}, "colour"),
        ({**base, "kind": "opinion"}, "kind"),
        ({**base, "status": "maybe"}, "status"),
        ({**base, "decided_on": "31/01/2026"}, "decided_on"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/records/", body, format="json", **bearer(rw_token))
        error = _error(response, 400, "invalid")
        assert field in error["details"], (body, error)
    assert Record.objects.count() == 0


def test_a_body_that_is_not_an_object_is_invalid(api, space, rw_token):
    response = _post_raw(api, "/api/v1/records/", b"[1, 2]", rw_token)
    _error(response, 400, "invalid")


def test_wrong_content_type_gets_415(api, space, rw_token):
    response = _post_raw(
        api, "/api/v1/records/", b"title=x", rw_token, "application/x-www-form-urlencoded"
    )
    _error(response, 415, "unsupported_media_type")
    response = _post_raw(api, "/api/v1/records/", b"hello", rw_token, "text/plain")
    _error(response, 415, "unsupported_media_type")


def test_oversized_body_gets_413_and_writes_nothing(api, space, rw_token, settings):
    settings.API_MAX_BODY_BYTES = 2000
    body = (
        b'{"space": "payments", "kind": "decision", "title": "x", "body": "' + b"a" * 3000 + b'"}'
    )
    _error(_post_raw(api, "/api/v1/records/", body, rw_token), 413, "too_large")
    assert Record.objects.count() == 0


def test_unknown_api_url_and_wrong_method_answer_in_the_error_shape(api, rw_token):
    _error(api.get("/api/v1/nothing-here/", **bearer(rw_token)), 404, "not_found")
    _error(api.delete("/api/v1/records/", **bearer(rw_token)), 405, "method_not_allowed")


def test_service_refusals_map_to_their_status(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner)
    # Conflict: the same link twice.
    body = {"target": make_record(space=space, actor=owner).pk, "type": "depends_on"}
    path = f"/api/v1/records/{record.pk}/links/"
    assert api.post(path, body, format="json", **bearer(rw_token)).status_code == 201
    _error(api.post(path, body, format="json", **bearer(rw_token)), 409, "conflict")
    # InvalidInput from the service: a new record cannot start superseded.
    response = api.post(
        "/api/v1/records/",
        {"space": "payments", "kind": "decision", "title": "x", "status": "superseded"},
        format="json",
        **bearer(rw_token),
    )
    assert _error(response, 400, "invalid")["details"] == {"status": ["Use a supersedes link."]}


# --- optimistic concurrency ----------------------------------------------------------------


def test_record_read_carries_its_version_as_etag(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner)
    response = api.get(f"/api/v1/records/{record.pk}/", **bearer(rw_token))
    assert response["ETag"] == '"1"'
    assert response.json()["version"] == 1


def test_patch_without_if_match_is_refused_with_428(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner, title="Before")
    response = api.patch(
        f"/api/v1/records/{record.pk}/", {"title": "After"}, format="json", **bearer(rw_token)
    )
    _error(response, 428, "precondition_required")
    record.refresh_from_db()
    assert (record.title, record.version) == ("Before", 1)


def test_stale_if_match_gets_412_with_current_version_and_changes_nothing(
    api, space, owner, teammate, rw_token
):
    record = make_record(space=space, actor=owner, title="Before")
    # Someone else saves first (version 1 -> 2).
    api.force_login(teammate, backend=MODEL_BACKEND)
    first = api.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": "Teammate's title"},
        format="json",
        HTTP_IF_MATCH='"1"',
    )
    assert first.status_code == 200
    assert first["ETag"] == '"2"'
    api.logout()
    revisions = Revision.objects.filter(record=record).count()
    # The token holder still edits version 1.
    response = api.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": "My title", "body": "Mine"},
        format="json",
        HTTP_IF_MATCH='"1"',
        **bearer(rw_token),
    )
    error = _error(response, 412, "version_conflict")
    assert error["details"] == {"current_version": 2}
    assert response["ETag"] == '"2"'
    record.refresh_from_db()
    assert (record.title, record.body, record.version) == ("Teammate's title", "", 2)
    assert Revision.objects.filter(record=record).count() == revisions


def test_put_replaces_fields_and_returns_the_new_etag(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner, title="Old", summary="s", tags=["a"])
    response = api.put(
        f"/api/v1/records/{record.pk}/",
        {"title": "New", "body": "Text"},
        format="json",
        HTTP_IF_MATCH='W/"1"',
        **bearer(rw_token),
    )
    assert response.status_code == 200, response.content
    assert response["ETag"] == '"2"'
    data = response.json()
    assert (data["title"], data["summary"], data["tags"], data["body"]) == ("New", "", [], "Text")


def test_garbage_if_match_is_invalid(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner)
    response = api.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": "x"},
        format="json",
        HTTP_IF_MATCH="yesterday",
        **bearer(rw_token),
    )
    assert "If-Match" in _error(response, 400, "invalid")["details"]


# --- authentication and throttling ---------------------------------------------------------


def test_missing_and_bad_tokens_get_401_with_a_bearer_challenge(api, space):
    response = api.get("/api/v1/records/")
    _error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    response = api.get("/api/v1/records/", **bearer("ckb_not-a-real-token"))
    _error(response, 401, "authentication_failed")
    response = api.get("/api/v1/records/", HTTP_AUTHORIZATION="Bearer")
    _error(response, 401, "authentication_failed")


def test_throttled_token_gets_429_with_retry_after(api, space, read_token, settings):
    settings.API_THROTTLE_RATES = {"token": "3/minute", "ip": "1000/minute"}
    for _ in range(3):
        assert api.get("/api/v1/records/", **bearer(read_token)).status_code == 200
    response = api.get("/api/v1/records/", **bearer(read_token))
    error = _error(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(response["Retry-After"])


def test_ip_limit_applies_across_tokens(api, space, owner, read_token, rw_token, settings):
    settings.API_THROTTLE_RATES = {"token": "1000/minute", "ip": "4/minute"}
    for token in (read_token, rw_token, read_token, rw_token):
        assert api.get("/api/v1/me/", **bearer(token)).status_code == 200
    _error(api.get("/api/v1/me/", **bearer(rw_token)), 429, "throttled")
    # Another client address has its own budget.
    assert api.get("/api/v1/me/", REMOTE_ADDR="10.0.0.9", **bearer(rw_token)).status_code == 200


def test_extreme_dates_in_filters_are_handled(api, space, owner, rw_token):
    make_record(space=space, actor=owner)
    odd_offset = api.get(
        "/api/v1/records/", {"updated_since": "0067-05-27T09:32:07-17:01"}, **bearer(rw_token)
    )
    assert odd_offset.json()["count"] == 1
    overflow = api.get(
        "/api/v1/records/", {"updated_since": "0001-01-01T00:00:00+05:00"}, **bearer(rw_token)
    )
    _error(overflow, 400, "invalid")


def test_django_level_bad_request_under_api_is_json(api, rw_token):
    response = api.get("/api/v1/me/", HTTP_HOST="evil.example", **bearer(rw_token))
    _error(response, 400, "bad_request")


def test_address_limit_also_stops_token_guessing(api, space, settings):
    settings.API_THROTTLE_RATES = {"token": "1000/minute", "ip": "3/minute"}
    for n in range(3):
        _error(api.get("/api/v1/me/", **bearer(f"ckb_guess{n}")), 401, "authentication_failed")
    _error(api.get("/api/v1/me/", **bearer("ckb_guess4")), 429, "throttled")


# --- more hostile input ----------------------------------------------------------------------


def test_a_body_over_the_default_limit_is_413_not_a_bad_request(api, space, rw_token, settings):
    # Django itself refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (1 MiB, the API's limit too)
    # when DRF first reads them; that must still be a 413 in the error shape.
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.API_MAX_BODY_BYTES == 1_048_576
    body = b'{"space": "payments", "kind": "decision", "title": "x", "body": "'
    body += b"a" * 1_100_000 + b'"}'
    error = _error(_post_raw(api, "/api/v1/records/", body, rw_token), 413, "too_large")
    assert "1,048,576 bytes" in error["message"]
    assert Record.objects.count() == 0


def test_json_numbers_and_booleans_are_not_strings_and_strings_are_not_ids(
    api, space, owner, rw_token
):
    base = {"space": "payments", "kind": "decision", "title": "Use Postgres"}
    for body, field in [
        ({**base, "title": 123}, "title"),
        ({**base, "summary": 1.5}, "summary"),
        ({**base, "tags": [1, 2]}, "tags"),
        ({**base, "anchors": [True]}, "anchors"),
        ({**base, "kind": 1}, "kind"),
        ({**base, "space": 7}, "space"),
        ({**base, "decided_on": 20260101}, "decided_on"),
    ]:
        response = api.post("/api/v1/records/", body, format="json", **bearer(rw_token))
        assert field in _error(response, 400, "invalid")["details"], body
    record = make_record(space=space, actor=owner)
    other = make_record(space=space, actor=owner)
    path = f"/api/v1/records/{record.pk}/links/"
    for target in (str(other.pk), float(other.pk), True, 10**30, -1):
        body = {"target": target, "type": "depends_on"}
        response = api.post(path, body, format="json", **bearer(rw_token))
        assert "target" in _error(response, 400, "invalid")["details"], target
    assert Record.objects.count() == 2
    assert not record.outgoing_links.exists()


def test_a_patch_with_one_bad_field_changes_nothing(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner, title="Before", tags=["a"])
    response = api.patch(
        f"/api/v1/records/{record.pk}/",
        {"title": "After", "tags": "not-a-list"},
        format="json",
        HTTP_IF_MATCH='"1"',
        **bearer(rw_token),
    )
    assert "tags" in _error(response, 400, "invalid")["details"]
    record.refresh_from_db()
    assert (record.title, record.tags, record.version) == ("Before", ["a"], 1)
    assert Revision.objects.filter(record=record).count() == 1


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=-5", "page_size"),
        ("page_size=", "page_size"),
        ("updated_since=", "updated_since"),
        ("archived=", "archived"),
        ("kind=", "kind"),
    ],
)
def test_garbage_pagination_and_empty_dates_are_400_naming_the_parameter(
    api, space, rw_token, query, name
):
    for path in ("/api/v1/records/", "/api/v1/links/", "/api/v1/spaces/"):
        if not name.startswith("page") and path != "/api/v1/records/":
            continue
        response = api.get(f"{path}?{query}", **bearer(rw_token))
        assert name in _error(response, 400, "invalid")["details"], (path, query)


def test_huge_page_sizes_are_capped_and_huge_pages_are_past_the_end(api, space, owner, rw_token):
    for _ in range(3):
        make_record(space=space, actor=owner)
    big = api.get("/api/v1/records/?page_size=1000000", **bearer(rw_token))
    assert big.status_code == 200 and len(big.json()["results"]) == 3
    huge = api.get("/api/v1/records/?page_size=" + "9" * 5000, **bearer(rw_token))
    assert huge.status_code == 200 and len(huge.json()["results"]) == 3
    _error(api.get("/api/v1/records/?page=" + "9" * 5000, **bearer(rw_token)), 404, "not_found")
    _error(api.get("/api/v1/records/?page=2", **bearer(rw_token)), 404, "not_found")


def test_if_match_star_is_refused_and_a_list_of_etags_is_understood(api, space, owner, rw_token):
    record = make_record(space=space, actor=owner, title="Before")
    path = f"/api/v1/records/{record.pk}/"

    def patch(if_match, title):
        return api.patch(
            path, {"title": title}, format="json", HTTP_IF_MATCH=if_match, **bearer(rw_token)
        )

    error = _error(patch("*", "Blind"), 400, "invalid")
    assert "ETag" in error["details"]["If-Match"][0]
    assert patch('"7", W/"1"', "Listed").status_code == 200  # the current one is in the list
    _error(patch('"1", "3"', "Stale"), 412, "version_conflict")
    assert patch("2", "Unquoted").status_code == 200
    record.refresh_from_db()
    assert (record.title, record.version) == ("Unquoted", 3)


def test_not_acceptable_and_not_allowed_answer_in_the_error_shape(api, space, rw_token):
    response = api.get("/api/v1/records/", HTTP_ACCEPT="text/html", **bearer(rw_token))
    _error(response, 406, "not_acceptable")
    response = api.delete("/api/v1/records/", **bearer(rw_token))
    _error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_nul_characters_in_query_parameters_are_refused(api, space, rw_token):
    for query in ("q=a%00b", "owner=%00", "tag=%00", "anchor=src/%00", "space=%00"):
        response = api.get(f"/api/v1/records/?{query}", **bearer(rw_token))
        _error(response, 400, "invalid")


def test_a_client_cannot_dodge_the_address_limit_with_x_forwarded_for(api, space, settings):
    settings.API_THROTTLE_RATES = {"token": "1000/minute", "ip": "3/minute"}
    for n in range(3):
        response = api.get("/api/v1/me/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}", **bearer(f"ckb_{n}"))
        _error(response, 401, "authentication_failed")
    response = api.get("/api/v1/me/", HTTP_X_FORWARDED_FOR="10.0.0.9", **bearer("ckb_9"))
    _error(response, 429, "throttled")


def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_client(api, space, settings):
    settings.API_THROTTLE_RATES = {"token": "1000/minute", "ip": "2/minute"}
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy appends the real client; what the client wrote further left is ignored.
    for spoofed in ("1.1.1.1", "2.2.2.2"):
        forwarded = f"{spoofed}, 203.0.113.7"
        assert api.get("/api/v1/me/", HTTP_X_FORWARDED_FOR=forwarded).status_code == 401
    throttled = api.get("/api/v1/me/", HTTP_X_FORWARDED_FOR="3.3.3.3, 203.0.113.7")
    _error(throttled, 429, "throttled")
    other = api.get("/api/v1/me/", HTTP_X_FORWARDED_FOR="203.0.113.8")
    _error(other, 401, "not_authenticated")
