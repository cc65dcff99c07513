from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        # Request ids and JSON logs in Celery workers (signal receivers, no business logic).
        from apps.core import task_context  # noqa: F401
