"""Provider adapters: each speaks one provider's HTTP (or SMTP) API as a Deliverer.

One module per adapter (``whatsapp_cloud``, ``twilio_messages``, ``sendgrid_mail``,
``smtp_mail``) and one per provider's error table (``*_codes``), each entry with its source.
They share one aiohttp session per worker (``consumers.provider_http``).
"""

__all__ = ()
