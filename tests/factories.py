"""factory_boy factories. Records are made through the service so they get keys and revisions."""

import datetime as dt

import factory
from django.utils import timezone

from apps.accounts.models import ApiToken, Membership, Space, Team, User
from apps.records import services
from apps.records.models import Record


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class SpaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Space

    name = factory.Sequence(lambda n: f"Space {n}")
    slug = factory.Sequence(lambda n: f"space-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    space = factory.SubFactory(SpaceFactory)
    role = Membership.Role.EDITOR


def make_token(user, *, scope=ApiToken.Scope.READ, spaces=(), **fields) -> tuple[ApiToken, str]:
    """Create a token the way the product does; returns (token, plain text)."""
    plain = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        name=fields.pop("name", "test token"),
        token_hash=ApiToken.hash(plain),
        prefix=plain[:12],
        scope=scope,
        **fields,
    )
    if spaces:
        token.spaces.set(spaces)
    return token, plain


def make_record(*, space, actor, kind=Record.Kind.DECISION, title=None, **fields) -> Record:
    make_record.counter = getattr(make_record, "counter", 0) + 1
    return services.record_create(
        space=space,
        kind=kind,
        title=title or f"Record {make_record.counter}",
        actor=actor,
        **fields,
    )


# Two records the change-check tests (API and command-line client) assess changes against.


def make_billing_guardrail(*, space, owner) -> Record:
    """An accepted guardrail anchored to services/billing/**."""
    return make_record(
        space=space,
        actor=owner,
        kind="guardrail",
        title="Never log card numbers",
        anchors=["services/billing/**"],
        status="accepted",
        owner_user=owner,
    )


def make_stale_reports_decision(*, space, owner, **fields) -> Record:
    """An accepted decision anchored to reports/**, three days past its review date."""
    stale = make_record(
        space=space,
        actor=owner,
        title="Reports are built nightly",
        anchors=["reports/**"],
        status="accepted",
        owner_user=owner,
        **fields,
    )
    Record.objects.filter(pk=stale.pk).update(
        freshness="stale", next_review_at=timezone.now() - dt.timedelta(days=3)
    )
    return stale
