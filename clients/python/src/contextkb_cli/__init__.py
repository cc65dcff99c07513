"""The contextkb command-line client (see cli.py)."""

__version__ = "0.1.0"
