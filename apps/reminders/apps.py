from django.apps import AppConfig


class RemindersConfig(AppConfig):
    name = "apps.reminders"
    label = "reminders"
    verbose_name = "Staleness and reminders"

    def ready(self) -> None:
        from django.core import checks

        from apps.reminders.checks import send_lease_above_time_limit

        checks.register(send_lease_above_time_limit)
