"""Callback data of inline buttons, signed for the one user who may press them.

Telegram returns callback data exactly as the bot set it, but a modified
client can send any data. Signed data therefore ends in an HMAC-SHA256 tag
over the user id and the payload, keyed from the bot token, so that a forged
or another user's button is rejected before any lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# Telegram rejects callback data longer than 64 bytes.
MAX_CALLBACK_BYTES = 64
# 12 base64url characters keep 72 bits of the tag, which leaves room for the journal's longest filter.
TAG_CHARS = 12


def callback_key(bot_token: str, *, purpose: str) -> bytes:
    """Derive the signing key of one kind of button from the bot token, which every bot process shares.

    `purpose` (for example "journal") keeps the buttons of one feature from being accepted by another.
    """
    return hmac.new(f"chartbot {purpose} buttons".encode(), bot_token.encode(), hashlib.sha256).digest()


def _tag(key: bytes, user_id: str, body: str) -> str:
    digest = hmac.new(key, f"{user_id}|{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:TAG_CHARS]


def sign(key: bytes, prefix: str, user_id: str, body: str) -> str:
    """Return `prefix|body|tag`, the callback data that only `user_id` can press.

    Raises ValueError when the data would be over Telegram's 64-byte limit.
    """
    data = f"{prefix}|{body}|{_tag(key, user_id, body)}"
    if len(data.encode()) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data is {len(data.encode())} bytes, over Telegram's {MAX_CALLBACK_BYTES}")
    return data


def verify(key: bytes, prefix: str, user_id: str, data: str | None) -> str | None:
    """Return the body of callback data signed for `user_id` under `prefix`, or None when it is not."""
    if not data or not data.startswith(f"{prefix}|"):
        return None
    body, _, tag = data[len(prefix) + 1 :].rpartition("|")
    if not hmac.compare_digest(tag.encode(), _tag(key, user_id, body).encode()):
        return None
    return body
