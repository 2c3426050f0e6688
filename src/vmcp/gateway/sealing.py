"""Sealed ``requestState``: what the gateway hands a 2026-07-28 client to bring back on retry.

The state is JSON sealed with AES-GCM (authenticated encryption): a client can neither read
nor alter it, and one that was not minted with the gateway's key is refused. The key comes
from ``[gateway] state_key`` (or ``VMCP_STATE_KEY``), so every instance configured with the
same key can verify a state another minted; without one, each process draws its own. Every
state names its kind, the caller it was minted for and when it expires; the gateway checks all
three, and one-shot states (a waiting call) are refused the second time by the table that
holds the call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any

from vmcp.protocol.errors import INVALID_PARAMS, RpcError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: prefix of every token this version mints (bound under the tag as associated data)
_FORMAT = b"vmcp1"
_NONCE = 12


class StateSealer:
    """Seals and opens request states with one key."""

    def __init__(self, secret: str | None) -> None:
        """:param secret: the configured key material (any string); None draws a random key
        that only this process knows."""
        self._key = (hashlib.sha256(secret.encode("utf-8")).digest() if secret
                     else os.urandom(32))  # a 256-bit AES key, as AESGCM.generate_key draws
        self._cipher: AESGCM | None = None

    @property
    def _aead(self) -> AESGCM:
        # cryptography is imported on the first state sealed or opened, not at start-up:
        # only 2026-07-28 calls that wait for input need it.
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def seal(self, kind: str, caller: str, ttl: float, body: dict[str, Any]) -> str:
        """A token for ``body``, valid for ``ttl`` seconds and only for ``caller``."""
        payload = json.dumps({"k": kind, "c": caller, "x": time.time() + ttl, "b": body},
                             separators=(",", ":")).encode("utf-8")
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, payload, _FORMAT)
        return _FORMAT.decode() + "." + _encode(nonce + sealed)

    def open(self, token: Any, caller: str) -> tuple[str, dict[str, Any]]:
        """The kind and body of a token minted for ``caller``; -32602 for anything else
        (forged, altered, expired, another caller's, or not a token at all)."""
        from cryptography.exceptions import InvalidTag

        try:
            prefix, _, data = token.partition(".")
            if prefix.encode() != _FORMAT:
                raise ValueError("unknown format")
            raw = _decode(data)
            payload = json.loads(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _FORMAT))
            kind, owner, expires, body = payload["k"], payload["c"], payload["x"], payload["b"]
        except (AttributeError, ValueError, KeyError, TypeError, InvalidTag,
                binascii.Error) as exc:
            raise RpcError(INVALID_PARAMS, "Invalid requestState: it was not issued by this "
                           "gateway or it was altered") from exc
        if owner != caller:
            raise RpcError(INVALID_PARAMS, "Invalid requestState: it was issued to another "
                           "caller")
        if expires < time.time():
            raise RpcError(INVALID_PARAMS, "Invalid requestState: it has expired")
        return kind, body


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    """The bytes of a token's body; ValueError unless ``text`` is exactly their canonical
    encoding (base64 decoders skip what follows padding, so ``state + "-TAMPERED"`` would
    otherwise open like ``state``)."""
    data = text.encode("ascii")
    raw = base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    if _encode(raw).encode("ascii") != data:
        raise ValueError("not the canonical encoding")
    return raw
