"""Secrets kept at rest (a repository token, a chat webhook or bot token): encrypted with a key
derived from SECRET_KEY, never shown back, never logged."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from apps.core.errors import InvalidInput

# The derivation's label is part of every stored secret: changing it makes them unreadable.
_LABEL = "contextkb.repo-credential:"


def _fernet() -> Fernet:
    key = hashlib.sha256((_LABEL + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    """The secret encrypted for storage; "" stays ""."""
    return _fernet().encrypt(secret.encode()).decode() if secret else ""


def unseal(sealed: str, *, enter_again: str = "Enter it again.") -> str:
    """The stored secret in clear; InvalidInput when SECRET_KEY was rotated since it was sealed
    (`enter_again` tells the person where to give it anew)."""
    if not sealed:
        return ""
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise InvalidInput(
            "The stored credential can no longer be read (the server's secret key changed). "
            + enter_again
        ) from None
