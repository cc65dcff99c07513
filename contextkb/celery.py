"""The Celery application: configured from Django settings (namespace CELERY), JSON only."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")


class ContextkbCelery(Celery):
    """Celery, with the local (filesystem) broker's folders chosen per database when a
    connection is made, not when the settings are read: the test runner switches to the test
    database after that, and its tasks must reach the test database's workers."""

    def _connection(self, url, *args, transport_options=None, **kwargs):
        broker = url or self.conf.broker_url
        if str(broker).startswith("filesystem://") and not (transport_options or {}).get(
            "data_folder_in"
        ):
            from django.conf import settings

            from apps.core import local_broker
            from apps.core.task_context import local_broker_folders

            transport_options = {
                **local_broker_folders(settings.VAR_DIR),
                **(transport_options or {}),
            }
            kwargs.setdefault("transport", local_broker.Transport)
        return super()._connection(url, *args, transport_options=transport_options, **kwargs)


app = ContextkbCelery("contextkb", task_cls="apps.core.task_context:DatabaseBoundTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _check_database_on_start(**_kwargs) -> None:
    from apps.core.db import require_pgvector

    require_pgvector()
