"""(Re-)compute record embeddings with the configured provider, e.g. after switching providers."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Space
from apps.records.models import Record
from apps.retrieval import providers, services


class Command(BaseCommand):
    help = (
        "Embed records with the configured provider (CONTEXTKB_EMBEDDINGS_PROVIDER) and store "
        "the token counts context bundles use. By default only records that need it: no vector "
        "under the current model, or token counts missing or made by another tokenizer. --all "
        "recomputes every active record. Safe to interrupt and run again: it resumes. Run it "
        "after switching providers or models; until then search ignores the old vectors and "
        "finds records by full-text only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Recompute every active record.")
        parser.add_argument("--space", metavar="SLUG", help="Only the records of this space.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=256,
            help="Records per provider call and database write (default 256).",
        )

    def handle(self, *args, all: bool, space: str | None, batch_size: int, **options):
        provider = providers.get_provider()
        if provider is None:
            raise CommandError("CONTEXTKB_EMBEDDINGS_PROVIDER is `none`: nothing to compute.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        qs = (
            Record.objects.active()
            if all
            else services.records_needing_embedding(provider.model_key)
        )
        if space:
            if not Space.objects.filter(slug=space).exists():
                raise CommandError(f"No space with the slug {space!r}.")
            qs = qs.filter(space__slug=space)
        ids = list(qs.order_by("pk").values_list("pk", flat=True))
        written = 0
        show_bar = bool(ids) and options["verbosity"] > 0
        # The bar goes to the real stderr (Django's wrapper would add a newline per update).
        with tqdm(
            total=len(ids), unit="record", disable=not show_bar, file=sys.stderr, desc="Embedding"
        ) as bar:
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                try:
                    written += services.embed_records(record_ids=batch, force=all)
                except providers.EmbeddingUnavailable as exc:
                    raise CommandError(
                        f"The provider failed after {start} of {len(ids)} records: {exc}. "
                        "Run the command again to resume."
                    ) from exc
                bar.update(len(batch))
        if written:
            services.ensure_vector_index(provider.dimensions)
        message = f"Embedded {written} of {len(ids)} records with {provider.model_key}."
        if len(ids) > written:
            message += (
                f" The other {len(ids) - written} already had a current vector; their token "
                "counts are up to date now."
            )
        self.stdout.write(self.style.SUCCESS(message))
