#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A configuration problem (a bad environment variable, a database without pgvector) is
        # the operator's to fix: say what it is, without a traceback through Django's internals.
        sys.stderr.write(f"contextkb: configuration error: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
