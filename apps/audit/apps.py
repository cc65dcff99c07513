from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Security audit"

    def ready(self) -> None:
        # Django's own login signals are the only hook into its login views and admin login.
        from apps.audit import receivers  # noqa: F401
