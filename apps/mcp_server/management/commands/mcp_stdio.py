"""Serve the MCP tools over stdio for a local agent: `manage.py mcp_stdio --token ckb_…`."""

from __future__ import annotations

import logging
import os
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import token_authenticate


class Command(BaseCommand):
    help = "Run the contextkb MCP server over stdio, acting as the given API token."

    def add_arguments(self, parser):
        parser.add_argument(
            "--token",
            default=os.environ.get("CONTEXTKB_TOKEN", ""),
            help="A contextkb API token (ckb_…); defaults to $CONTEXTKB_TOKEN.",
        )

    def handle(self, *args, token: str, **options):
        if token_authenticate(token) is None:
            raise CommandError("Invalid, expired or revoked token (pass --token ckb_…).")
        # stdout carries the protocol: every log line goes to stderr.
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, force=True)
        from apps.mcp_server import auth, server

        auth.STDIO_TOKEN = token
        server.mcp.run("stdio")
