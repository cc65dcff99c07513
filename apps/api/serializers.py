"""Input serializers (plain Serializers whose validated_data go to a service) and output
serializers (ModelSerializers)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import ApiToken, Membership, Space, Team, User
from apps.core.links import absolute_url
from apps.records import fields as record_fields
from apps.records.models import Link, Record, Revision, Verification

# --- input -----------------------------------------------------------------------------------


class StrictInput(serializers.Serializer):
    """Rejects fields it does not know, instead of silently ignoring a typo."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class _JsonStringOnly:
    """Takes a JSON string only: DRF would turn `123`, `1.5` or `true` into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.", code="invalid")
        return super().to_internal_value(data)


class StrictCharField(_JsonStringOnly, serializers.CharField):
    pass


class StrictChoiceField(_JsonStringOnly, serializers.ChoiceField):
    pass


class StrictSlugField(_JsonStringOnly, serializers.SlugField):
    pass


class StrictRegexField(_JsonStringOnly, serializers.RegexField):
    pass


class StrictDateField(_JsonStringOnly, serializers.DateField):
    """An ISO date (`YYYY-MM-DD`) in a string."""


MAX_ID = 2**63 - 1  # PostgreSQL bigint


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: DRF would accept "5" and 5.0 as 5."""

    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF would also take "yes", "0" or 1."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _choice(choices, **kwargs):
    return StrictChoiceField(choices=choices, **kwargs)


# Names and limits of the editable fields: apps.records.fields.
_F = record_fields.BY_NAME


class RecordWriteInput(StrictInput):
    """The editable fields of a record (PUT replaces all of them, PATCH any subset)."""

    title = StrictCharField(max_length=_F["title"].max_length)
    summary = StrictCharField(max_length=_F["summary"].max_length, allow_blank=True, required=False)
    body = StrictCharField(
        max_length=_F["body"].max_length, allow_blank=True, required=False, trim_whitespace=False
    )
    status = _choice(Record.Status.choices, required=False)
    owner_user = StrictCharField(
        max_length=150, allow_null=True, required=False, help_text="Username of the owner."
    )
    owner_team = StrictCharField(
        max_length=60, allow_null=True, required=False, help_text="Slug of the owning team."
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=_F["tags"].max_length),
        max_length=_F["tags"].max_items,
        required=False,
    )
    anchors = serializers.ListField(
        child=StrictCharField(max_length=_F["anchors"].max_length),
        max_length=_F["anchors"].max_items,
        required=False,
        help_text="Code path globs (`services/billing/**`) or component names.",
    )
    reversibility = _choice(Record.Reversibility.choices, allow_blank=True, required=False)
    impact = _choice(Record.Impact.choices, allow_blank=True, required=False)
    decided_on = StrictDateField(allow_null=True, required=False)
    deciders = StrictCharField(
        max_length=_F["deciders"].max_length, allow_blank=True, required=False
    )
    valid_until = StrictDateField(allow_null=True, required=False)
    message = StrictCharField(
        max_length=300, allow_blank=True, required=False, help_text="Revision message."
    )
    allow_secrets = StrictBooleanField(
        required=False,
        default=False,
        help_text="Save text the secret scan refused (`secret_detected`) anyway. Space admins "
        "only; written to the audit log.",
    )


class RecordCreateInput(RecordWriteInput):
    space = StrictSlugField(max_length=60, help_text="Slug of the space.")
    kind = _choice(Record.Kind.choices)


class RecordPatchInput(RecordWriteInput):
    title = StrictCharField(max_length=_F["title"].max_length, required=False)


class LinkInput(StrictInput):
    target = StrictIntegerField(min_value=1, max_value=MAX_ID, help_text="Id of the target record.")
    type = _choice(Link.Type.choices)
    note = StrictCharField(max_length=300, allow_blank=True, required=False)


class LinkCreateInput(LinkInput):
    # Declared fields are taken off the class by DRF's metaclass, so naming one like an
    # attribute of Field (source, label) hides nothing at run time; the stubs cannot know.
    source = StrictIntegerField(  # type: ignore[assignment]
        min_value=1, max_value=MAX_ID, help_text="Id of the source record."
    )


class VerifyInput(StrictInput):
    outcome = _choice(Verification.Outcome.choices, required=False)
    note = StrictCharField(max_length=500, allow_blank=True, required=False)
    commit = StrictCharField(max_length=64, allow_blank=True, required=False)
    valid_until = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="When the record's valid-until date has passed: the new date (after today). "
        "Left out, the passed date is cleared; either way a revision records who decided.",
    )


class SupersedeInput(StrictInput):
    """Either an existing `successor`, or the fields of a `new` one (created in this space,
    of this kind), which may take over some of this record's links (`copy_links`)."""

    successor = StrictIntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        help_text="Id of the record that replaces this one.",
    )
    new = RecordWriteInput(
        required=False,
        help_text="Or: the fields of a new record that replaces this one (same space and kind).",
    )
    copy_links = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_ID),
        max_length=200,
        required=False,
        help_text="With `new`: ids of this record's outgoing links the new record takes over "
        "(not supersedes links).",
    )
    note = StrictCharField(max_length=300, allow_blank=True, required=False)

    def validate(self, attrs):
        if ("successor" in attrs) == ("new" in attrs):
            raise serializers.ValidationError(
                {"successor": ["Give either `successor` (an existing record) or `new`."]}
            )
        if attrs.get("copy_links") and "new" not in attrs:
            raise serializers.ValidationError(
                {"copy_links": ["Links are carried over to a `new` successor only."]}
            )
        return attrs


class SpaceCreateInput(StrictInput):
    name = StrictCharField(max_length=120)
    slug = StrictRegexField(
        r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$",
        max_length=60,
        required=False,
        allow_blank=True,
        error_messages={"invalid": "Lowercase letters and digits, joined by - or _."},
        help_text="Used in URLs, e.g. `payments-eu` (default: made from the name).",
    )
    description = StrictCharField(max_length=5000, allow_blank=True, required=False)


class SpaceUpdateInput(StrictInput):
    name = StrictCharField(max_length=120, required=False)
    description = StrictCharField(max_length=5000, allow_blank=True, required=False)


# --- output ----------------------------------------------------------------------------------


class SpaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Space
        fields = ["id", "slug", "name", "description", "created_at"]


class RecordRefSerializer(serializers.ModelSerializer):
    """Just enough to name a linked record."""

    space: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Record
        fields = ["id", "key", "space", "title", "kind", "status"]


class _RecordUrlMixin(serializers.Serializer):
    url = serializers.SerializerMethodField(help_text="The record's page, for people to read.")
    owner = serializers.CharField(source="owner_label", read_only=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: Record) -> str:
        return absolute_url(obj.get_absolute_url())


class RecordBriefSerializer(_RecordUrlMixin, serializers.ModelSerializer):
    """The small form (`fields=brief`) for clients that want little."""

    space: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = Record
        fields = ["id", "key", "space", "title", "kind", "status", "owner", "freshness", "url"]


class RecordSerializer(_RecordUrlMixin, serializers.ModelSerializer):
    api_url = serializers.SerializerMethodField(help_text="This record in the API.")
    space: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    owner_user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    owner_team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    reversibility = serializers.ChoiceField(
        choices=Record.Reversibility.choices, allow_blank=True, read_only=True
    )
    impact = serializers.ChoiceField(
        choices=Record.Impact.choices, allow_blank=True, read_only=True
    )
    archived = serializers.BooleanField(source="is_archived", read_only=True)

    class Meta:
        model = Record
        fields = [
            "id",
            "url",
            "api_url",
            "space",
            "key",
            "kind",
            "title",
            "summary",
            "body",
            "status",
            "owner",
            "owner_user",
            "owner_team",
            "tags",
            "anchors",
            "reversibility",
            "impact",
            "decided_on",
            "deciders",
            "valid_until",
            "freshness",
            "next_review_at",
            "last_verified_at",
            "version",
            "archived",
            "archived_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_api_url(self, obj: Record) -> str:
        path = reverse("api:record-detail", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class LinkSerializer(serializers.ModelSerializer):
    source = RecordRefSerializer(read_only=True)  # type: ignore[assignment]  # see LinkCreateInput
    target = RecordRefSerializer(read_only=True)

    class Meta:
        model = Link
        fields = ["id", "type", "source", "target", "note", "created_at"]


class RecordLinkSerializer(serializers.ModelSerializer):
    """A link seen from one record: its direction, how it reads, and the record at the other end."""

    direction = serializers.SerializerMethodField()
    label = serializers.SerializerMethodField()  # type: ignore[assignment]  # see LinkCreateInput
    other = serializers.SerializerMethodField()

    class Meta:
        model = Link
        fields = ["id", "type", "direction", "label", "other", "note", "created_at"]

    def _outgoing(self, obj: Link) -> bool:
        return obj.source_id == self.context["record"].pk

    @extend_schema_field({"type": "string", "enum": ["outgoing", "incoming"]})
    def get_direction(self, obj: Link) -> str:
        return "outgoing" if self._outgoing(obj) else "incoming"

    def get_label(self, obj: Link) -> str:
        return obj.get_type_display() if self._outgoing(obj) else Link.INVERSE_LABELS[obj.type]

    @extend_schema_field(RecordRefSerializer)
    def get_other(self, obj: Link) -> dict:
        return RecordRefSerializer(obj.target if self._outgoing(obj) else obj.source).data


class RevisionSerializer(serializers.ModelSerializer):
    """A revision as its reader may see it (`records.selectors.present_revisions`)."""

    author: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    message = serializers.CharField(source="text", read_only=True)

    class Meta:
        model = Revision
        fields = ["number", "version", "action", "message", "author", "created_at"]


class RevisionDetailSerializer(RevisionSerializer):
    snapshot = serializers.JSONField(source="shown_snapshot", read_only=True)

    class Meta(RevisionSerializer.Meta):
        fields = [*RevisionSerializer.Meta.fields, "snapshot"]


class FieldDiffSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.ListField(child=serializers.CharField())
    new = serializers.ListField(child=serializers.CharField())
    unified = serializers.ListField(child=serializers.CharField())


class RevisionDiffSerializer(serializers.Serializer):
    old = serializers.IntegerField(help_text="Number of the older revision.")
    new = serializers.IntegerField(help_text="Number of the newer revision.")
    changes = FieldDiffSerializer(many=True)


class VerificationSerializer(serializers.ModelSerializer):
    """A verification as its reader may see it (`records.selectors.present_verification`)."""

    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    linked_versions = serializers.DictField(
        source="shown_linked_versions",
        child=serializers.IntegerField(),
        read_only=True,
        help_text="The versions of the linked records it saw, by key (those you may see).",
    )

    class Meta:
        model = Verification
        fields = [
            "id",
            "outcome",
            "note",
            "record_version",
            "linked_versions",
            "commit",
            "actor",
            "created_at",
        ]


class MembershipSerializer(serializers.ModelSerializer):
    space = SpaceSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["space", "role"]


class TokenInfoSerializer(serializers.ModelSerializer):
    spaces: serializers.SlugRelatedField[Space] = serializers.SlugRelatedField(
        slug_field="slug", many=True, read_only=True
    )

    class Meta:
        model = ApiToken
        fields = ["name", "prefix", "scope", "spaces", "expires_at", "last_used_at"]


class MeSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)
    auth = serializers.SerializerMethodField()
    token = serializers.SerializerMethodField()
    spaces = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "name", "email", "auth", "token", "spaces"]

    @extend_schema_field({"type": "string", "enum": ["token", "session"]})
    def get_auth(self, obj) -> str:
        return "token" if self.context.get("token") else "session"

    @extend_schema_field(TokenInfoSerializer(allow_null=True))
    def get_token(self, obj):
        token = self.context.get("token")
        return TokenInfoSerializer(token).data if token else None

    @extend_schema_field(MembershipSerializer(many=True))
    def get_spaces(self, obj):
        return [
            {"space": SpaceSerializer(space).data, "role": role}
            for space, role in self.context["spaces"]
        ]


# --- errors (documentation only) ---------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`.")
    message = serializers.CharField(help_text="A sentence for people.")
    details = serializers.DictField(
        help_text="Per-field messages for `invalid`; `current_version` for `version_conflict`; "
        "`retry_after` for `throttled`."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
