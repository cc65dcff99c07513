"""The Celery application: configured from Django settings (namespace CELERY), JSON only."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

app = Celery("contextkb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_database_on_start(**_kwargs) -> None:
    from apps.core.db import require_pgvector

    require_pgvector()
