"""Help layout shared by the interchange commands: Django's (the command's own options first)
with the epilog printed as written."""

import argparse

from django.core.management.base import DjangoHelpFormatter


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass
