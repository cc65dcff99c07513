"""(Re-)compute record embeddings with the configured provider, e.g. after switching providers."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.records.models import Record
from apps.retrieval import providers, services


class Command(BaseCommand):
    help = (
        "Embed records with the configured provider (CONTEXTKB_EMBEDDINGS_PROVIDER). By default "
        "only records without a current vector; --all recomputes every one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="Recompute every record.")
        parser.add_argument("--space", help="Only this space (slug).")
        parser.add_argument("--batch-size", type=int, default=256)

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
            qs = qs.filter(space__slug=space)
        ids = list(qs.order_by("pk").values_list("pk", flat=True))
        written = 0
        with tqdm(total=len(ids), unit="record", disable=not ids) as bar:
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                try:
                    written += services.embed_records(record_ids=batch, force=all)
                except providers.EmbeddingUnavailable as exc:
                    raise CommandError(
                        f"The provider failed after {written} records: {exc}. Run again to resume."
                    ) from exc
                bar.update(len(batch))
        if written:
            services.ensure_vector_index(provider.dimensions)
        self.stdout.write(
            self.style.SUCCESS(
                f"Embedded {written} of {len(ids)} records with {provider.model_key}."
            )
        )
