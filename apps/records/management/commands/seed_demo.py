"""Create the demo space, users and a dozen linked records. Safe to run again."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Space, Team, User
from apps.records import services
from apps.records.models import Record

DEMO_PASSWORD = "contextkb-demo"  # noqa: S105 - printed for demo logins

# (ref, kind, title, summary, status, extra fields, body)
RECORDS: list[tuple[str, str, str, str, str, dict[str, Any], str]] = [
    (
        "int-payouts",
        "intent",
        "Merchants are paid out within one business day",
        "Fast, predictable payouts are why merchants pick us over the incumbents.",
        "accepted",
        {"tags": ["payouts", "merchants"], "anchors": ["services/payouts/**"]},
        "## Problem\nSmall merchants wait 3–5 days for their money and cannot plan cash flow.\n\n"
        "## Outcome\n95% of payouts land by the next business day.\n\n## Non-goals\nInstant payouts.\n\n"
        "## Success signals\nPayout latency p95 under 24 h; fewer 'where is my money' tickets.",
    ),
    (
        "int-onboarding",
        "intent",
        "Small merchants onboard themselves in under ten minutes",
        "No sales call needed for merchants under 1M/year.",
        "proposed",
        {"tags": ["onboarding"], "anchors": ["web/onboarding/**"]},
        "## Problem\nOnboarding needs a sales call.\n\n## Outcome\nSelf-serve sign-up with KYC checks.\n\n"
        "## Non-goals\nEnterprise contracts.\n\n## Success signals\nMedian onboarding time under 10 minutes.",
    ),
    (
        "dec-postgres",
        "decision",
        "PostgreSQL is the system of record for the ledger",
        "One relational database with serialisable transactions holds every ledger entry.",
        "accepted",
        {
            "tags": ["database", "ledger"],
            "anchors": ["services/ledger/**"],
            "reversibility": "one_way",
            "impact": "high",
            "decided_on": "2025-03-04",
            "deciders": "Platform team",
        },
        "## Context\nLedger entries must never be lost or double-applied.\n\n## Decision\nUse PostgreSQL "
        "with SERIALIZABLE transactions for the ledger.\n\n## Consequences\nNo eventual consistency in "
        "balances; cross-region writes go through one primary.\n\n## Alternatives\nDynamoDB, event store.",
    ),
    (
        "dec-payout-jobs",
        "decision",
        "Payouts run as idempotent background jobs",
        "Each payout is a Celery task keyed by payout id; retries never pay twice.",
        "accepted",
        {
            "tags": ["payouts", "celery"],
            "anchors": ["services/payouts/**"],
            "reversibility": "two_way",
            "impact": "medium",
            "decided_on": "2025-04-10",
            "deciders": "Payouts squad",
        },
        "## Context\nBank APIs time out.\n\n## Decision\nRun payouts as Celery tasks with an idempotency "
        "key per payout.\n\n## Consequences\nWorkers must be able to retry safely.\n\n## Alternatives\n"
        "Synchronous payouts from the API.",
    ),
    (
        "con-minor-units",
        "constraint",
        "Money amounts are integers in minor units",
        "Never store or compute money as floats.",
        "accepted",
        {"tags": ["money", "ledger"], "anchors": ["services/ledger/**", "services/payouts/**"]},
        "## Rule\nAll amounts are integers in the currency's minor unit (cents).\n\n## Rationale\nFloats "
        "lose pennies.\n\n## Scope\nLedger, payouts, invoices.\n\n## How to check\nNo `float` in money "
        "columns; `Decimal` only at the edges.",
    ),
    (
        "con-pci",
        "constraint",
        "Card data never leaves the PCI zone",
        "Only services/cards may see full card numbers.",
        "accepted",
        {"tags": ["security", "pci"], "anchors": ["services/cards/**"]},
        "## Rule\nPANs are tokenised in services/cards and never logged or sent elsewhere.\n\n## Rationale"
        "\nPCI DSS scope.\n\n## Scope\nEverything outside services/cards.\n\n## How to check\nThe DLP "
        "scanner in CI.",
    ),
    (
        "con-timeouts",
        "constraint",
        "Every external call has a timeout under 10 seconds",
        "No unbounded waits on partners.",
        "accepted",
        {"tags": ["reliability"], "anchors": ["services/**/clients/*.py"]},
        "## Rule\nEvery HTTP client sets connect and read timeouts, total under 10 s.\n\n## Rationale\n"
        "A stuck partner must not exhaust workers.\n\n## Scope\nAll outbound calls.\n\n## How to check\n"
        "Lint rule `no-bare-requests`.",
    ),
    (
        "grd-migrations",
        "guardrail",
        "Agents must not edit migrations that have shipped",
        "Add a new migration instead of changing an applied one.",
        "accepted",
        {"tags": ["database", "agents"], "anchors": ["**/migrations/**"]},
        "## Rule for agents\nNever modify a migration file that exists on main; create a new one.\n\n"
        "## Why\nApplied migrations are history; editing them breaks every other environment.\n\n"
        "## Escalate to\nThe platform team channel.",
    ),
    (
        "grd-logging",
        "guardrail",
        "Agents must not log request bodies in billing",
        "Billing requests contain personal data.",
        "accepted",
        {"tags": ["privacy", "agents"], "anchors": ["services/billing/**"]},
        "## Rule for agents\nDo not add logging of request or response bodies under services/billing.\n\n"
        "## Why\nThey contain names, addresses and bank details.\n\n## Escalate to\nThe privacy officer.",
    ),
    (
        "dec-webhook-retry",
        "decision",
        "Retry failed webhooks with exponential backoff",
        "Up to 8 attempts over 24 hours.",
        "accepted",
        {
            "tags": ["webhooks"],
            "anchors": ["services/webhooks/**"],
            "reversibility": "two_way",
            "impact": "medium",
            "decided_on": "2024-11-02",
        },
        "## Context\nMerchant endpoints fail.\n\n## Decision\nRetry with exponential backoff.\n\n"
        "## Consequences\nLost events when the process restarts mid-retry.\n\n## Alternatives\nNone.",
    ),
    (
        "dec-webhook-outbox",
        "decision",
        "Deliver webhooks through a durable outbox table",
        "Events are written to an outbox in the same transaction and delivered by a worker.",
        "accepted",
        {
            "tags": ["webhooks", "reliability"],
            "anchors": ["services/webhooks/**"],
            "reversibility": "two_way",
            "impact": "high",
            "decided_on": "2025-06-18",
        },
        "## Context\nBackoff retries lost events on restarts (see the decision this supersedes).\n\n"
        "## Decision\nWrite every event to an outbox table in the business transaction; a worker "
        "delivers and retries.\n\n## Consequences\nAt-least-once delivery; receivers dedupe by event id."
        "\n\n## Alternatives\nKafka.",
    ),
    (
        "dec-public-api",
        "decision",
        "The public API is REST with JSON and OpenAPI 3",
        "Partners generate clients from the published schema.",
        "accepted",
        {
            "tags": ["api"],
            "anchors": ["services/api/**"],
            "reversibility": "one_way",
            "impact": "high",
            "decided_on": "2025-01-20",
        },
        "## Context\nPartners use many languages.\n\n## Decision\nREST + JSON, described by OpenAPI 3.\n\n"
        "## Consequences\nBreaking changes need a new version.\n\n## Alternatives\ngRPC, GraphQL.",
    ),
]

LINKS = [
    ("dec-postgres", "implements", "int-payouts"),
    ("dec-payout-jobs", "implements", "int-payouts"),
    ("dec-payout-jobs", "depends_on", "dec-postgres"),
    ("con-minor-units", "constrains", "dec-postgres"),
    ("con-minor-units", "constrains", "dec-payout-jobs"),
    ("con-timeouts", "constrains", "dec-payout-jobs"),
    ("grd-migrations", "relates_to", "dec-postgres"),
    ("dec-public-api", "relates_to", "int-onboarding"),
]


class Command(BaseCommand):
    help = (
        "Create a demo space ('payments') with three users and a dozen realistic, linked records "
        "of all four kinds. Running it again changes nothing."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            created = self._seed()
        if created:
            self.stdout.write(self.style.SUCCESS("Demo space 'payments' created with 12 records."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(
            f"Log in as demo / {DEMO_PASSWORD} (also an admin), or as ana / {DEMO_PASSWORD} "
            f"(editor) and ben / {DEMO_PASSWORD} (viewer)."
        )

    def _user(self, username: str, first: str, last: str, **extra) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@example.com",
                "first_name": first,
                "last_name": last,
                **extra,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user

    def _seed(self) -> bool:
        demo = self._user("demo", "Dana", "Demo", is_staff=True, is_superuser=True)
        ana = self._user("ana", "Ana", "Editor")
        ben = self._user("ben", "Ben", "Viewer")
        space, _ = Space.objects.get_or_create(
            slug="payments",
            defaults={
                "name": "Payments",
                "description": "Payouts, ledger, billing and the public API.",
            },
        )
        for user, role in ((demo, "admin"), (ana, "editor"), (ben, "viewer")):
            Membership.objects.get_or_create(user=user, space=space, defaults={"role": role})
        team, _ = Team.objects.get_or_create(slug="platform", defaults={"name": "Platform team"})
        team.members.add(demo, ana)
        if Record.objects.filter(space=space).exists():
            return False
        now = timezone.now()
        refs: dict[str, Record] = {}
        for index, (ref, kind, title, summary, status, extra, body) in enumerate(RECORDS):
            owner = (
                {"owner_team": team}
                if kind == "guardrail"
                else {"owner_user": ana if index % 2 else demo}
            )
            refs[ref] = services.record_create(
                space=space,
                kind=kind,
                title=title,
                summary=summary,
                body=body,
                status=status,
                actor=demo,
                now=now - timedelta(days=200 - index * 10),
                **owner,
                **extra,
            )
        for source, link_type, target in LINKS:
            services.record_link(
                source=refs[source], target=refs[target], type=link_type, actor=demo
            )
        services.record_supersede(
            old=refs["dec-webhook-retry"], new=refs["dec-webhook-outbox"], actor=demo
        )
        # Some records were verified recently; the oldest ones are left stale or due for review.
        for ref in (
            "int-payouts",
            "con-pci",
            "grd-logging",
            "dec-public-api",
            "dec-webhook-outbox",
        ):
            services.record_verify(
                record=refs[ref], actor=demo, note="Checked at the quarterly review"
            )
        for record in Record.objects.filter(space=space):
            services.refresh_freshness(record, now=now)
        return True
