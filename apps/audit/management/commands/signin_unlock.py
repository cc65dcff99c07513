"""manage.py signin_unlock: list sign-in locks, or lift one (audited)."""

from __future__ import annotations

import ipaddress

from django.core.management.base import BaseCommand, CommandError

from apps.audit import lockout
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log


class Command(BaseCommand):
    help = (
        "Without arguments: list the accounts and addresses locked out of signing in now "
        "(LOGIN_LOCKOUT_* settings). With a username, --ip or --all: lift those locks at once "
        "(written to the audit log); the counts start again from zero."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", help="Lift the locks on this account.")
        parser.add_argument("--ip", help="Lift the lock on this client address.")
        parser.add_argument(
            "--all", action="store_true", help="Lift every lock on every account and address."
        )

    def handle(self, *args, username=None, ip=None, all=False, **options):
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip.strip()))
            except ValueError:
                raise CommandError(f"{ip!r} is not an IP address.") from None
        if all and (username or ip):
            raise CommandError("--all lifts every lock; give no username or --ip with it.")
        if not (username or ip or all):
            self._list()
            return
        what = "every sign-in lock" if all else " and ".join(
            part for part in (f"account {username!r}" if username else "",
                              f"address {ip}" if ip else "") if part
        )  # fmt: skip
        audit_log(
            kind=AuditEvent.Kind.LOGIN_UNLOCKED,
            username=username or "",
            ip=ip,
            path="manage.py signin_unlock",
            message=f"Lifted the locks on {what}",
        )
        self.stdout.write(f"Lifted the locks on {what}. The next sign-in attempt is counted anew.")

    def _list(self) -> None:
        locks = lockout.current_locks()
        if not locks:
            self.stdout.write("No account or address is locked out.")
            return
        self.stdout.write(f"{'locked':<9} {'who':<42} {'failures':>8}  lifts in")
        for lock in locks:
            minutes = -(-lock["retry_after"] // 60)
            self.stdout.write(
                f"{lock['what']:<9} {lock['who'][:42]:<42} {lock['failures']:>8}  {minutes} min"
            )
        self.stdout.write(
            "Lift one with `manage.py signin_unlock USERNAME` or `--ip ADDRESS` (or `--all`)."
        )
