"""The signatures providers put on their status callbacks, to sign (the local provider)
and to check (relayq's receipts endpoints), each compared in constant time.

- WhatsApp (Meta webhooks): ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 keyed with
  the app secret over the raw request body
  (developers.facebook.com/docs/graph-api/webhooks/getting-started, "Validating payloads").
- Twilio: ``X-Twilio-Signature``, base64 of HMAC-SHA1 keyed with the auth token over the
  full URL (query included) followed by each POST parameter's name and value, sorted by
  name (twilio.com/docs/usage/webhooks/webhooks-security).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

__all__ = (
    "TWILIO_HEADER",
    "WHATSAPP_HEADER",
    "twilio_signature",
    "verify_twilio",
    "verify_whatsapp",
    "whatsapp_signature",
)

WHATSAPP_HEADER = "X-Hub-Signature-256"
TWILIO_HEADER = "X-Twilio-Signature"


def whatsapp_signature(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_whatsapp(app_secret: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(
        whatsapp_signature(app_secret, body).encode(), (header or "").encode()
    )


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` value Twilio sends with a form POST of ``params`` to ``url``."""
    data = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def verify_twilio(auth_token: str, url: str, params: Mapping[str, str], header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(
        twilio_signature(auth_token, url, params).encode(), (header or "").encode()
    )
