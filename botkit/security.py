"""Is this delivery from Chatwoot?

Chatwoot 4.13+ signs each delivery of a bot that has a secret: `X-Chatwoot-Signature: sha256=<hex>` is
HMAC-SHA256 keyed with the secret over `"<X-Chatwoot-Timestamp>.<raw body>"` (a signature over the body
alone never matches: Chatwoot issue #13809). Older releases sign nothing but send the credentials of the
`outgoing_url` (`https://user:pass@host/webhook`) as HTTP Basic auth. Every check compares in constant time,
and nothing here logs or returns anything about what was wrong: a caller gets the same bare 401 either way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from botkit.config import ConfigError, Settings

SIGNATURE_HEADER = "x-chatwoot-signature"
TIMESTAMP_HEADER = "x-chatwoot-timestamp"
DELIVERY_HEADER = "x-chatwoot-delivery"


def signature(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The value of X-Chatwoot-Signature, exactly as Chatwoot computes it."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: bytes | str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Chatwoot sends with a signed delivery (for tests, `botkit send` and `botkit sign`)."""
    key = secret.encode() if isinstance(secret, str) else secret
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "X-Chatwoot-Timestamp": str(stamp),
        "X-Chatwoot-Signature": signature(key, stamp, body),
    }


class Verifier:
    """Decides whether a delivery is authentic. One instance per bot endpoint."""

    def __init__(
        self,
        secrets: list[bytes],
        *,
        basic_auth: str | None = None,
        allow_unsigned: bool = False,
        tolerance: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = list(secrets)
        self._basic = (
            b"Basic " + base64.b64encode(basic_auth.encode()) if basic_auth is not None else None
        )
        self._allow_unsigned = allow_unsigned
        self._tolerance = tolerance
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier:
        secrets = settings.webhook_secrets
        basic = settings.botkit_basic_auth.get_secret_value() if settings.botkit_basic_auth else None
        if not secrets and basic is None and not settings.botkit_allow_unsigned:
            raise ConfigError(
                "No way to check that deliveries come from Chatwoot: set CHATWOOT_WEBHOOK_SECRET to the agent "
                "bot's secret (or BOTKIT_BASIC_AUTH for Chatwoot before 4.13, or BOTKIT_ALLOW_UNSIGNED=true)"
            )
        return cls(
            secrets,
            basic_auth=basic,
            allow_unsigned=settings.botkit_allow_unsigned,
            tolerance=settings.botkit_signature_tolerance,
        )

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        signed = SIGNATURE_HEADER in headers
        if signed and not self._signature_ok(headers, body):
            return False
        if self._basic is not None and not self._basic_ok(headers):
            return False
        # An unsigned delivery passes only on Basic credentials or the explicit opt-in.
        return signed or self._basic is not None or self._allow_unsigned

    def _signature_ok(self, headers: Mapping[str, str], body: bytes) -> bool:
        if not self._secrets:
            return False
        stamp = headers.get(TIMESTAMP_HEADER, "")
        if not stamp.isascii() or not stamp.isdigit() or abs(self._clock() - int(stamp)) > self._tolerance:
            return False
        given = headers.get(SIGNATURE_HEADER, "").strip().lower().encode("ascii", "replace")
        ok = False
        for secret in self._secrets:  # every secret is tried, so timing says nothing about which one matched
            ok |= hmac.compare_digest(given, signature(secret, stamp, body).encode())
        return ok

    def _basic_ok(self, headers: Mapping[str, str]) -> bool:
        given = headers.get("authorization", "").encode("latin-1", "replace")
        return hmac.compare_digest(given, self._basic or b"")

