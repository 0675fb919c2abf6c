"""Router credentials are encrypted at rest (Fernet) with a key from settings.

SONJOG_FIELD_KEY may be any string; it is stretched to a Fernet key. Changing it makes stored
credentials unreadable, so it is separate from SECRET_KEY, which operators rotate more freely.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(settings.SONJOG_FIELD_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError("stored router credentials cannot be decrypted: was SONJOG_FIELD_KEY changed?") from None
