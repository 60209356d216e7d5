"""relayq's settings: one typed object, read from ``RELAYQ_*`` / ``REDIS_URL`` variables.

Every variable, its default and its meaning is listed in ``ENVIRONMENT`` (and the README).
A bad value raises ConfigurationError naming the variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from relayq.streams.errors import ConfigurationError
from relayq.streams.message import CHANNEL_PATTERN
from relayq.streams.priority_levels import DEFAULT_PRIORITIES, PriorityLevels

__all__ = (
    "DEFAULT_CHANNELS",
    "ENVIRONMENT",
    "EVENT_LOOPS",
    "SECRET_FIELDS",
    "ChannelLimits",
    "Settings",
    "default_data_dir",
    "parse_channel_limits",
    "parse_headers",
)

SECRET_FIELDS = (
    "webhook_secret",
    "webhook_headers",
    "whatsapp_token",
    "whatsapp_app_secret",
    "whatsapp_verify_token",
    "twilio_auth_token",
    "sendgrid_api_key",
    "smtp_url",
)
"""Fields whose values ``repr`` does not show."""
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
DEFAULT_CHANNELS = "whatsapp=whatsapp,sms=twilio,email=sendgrid>smtp,webhook=webhook"
"""Channel -> adapters, used with ``RELAYQ_DELIVERER=channels`` (only those configured)."""
"""A worker's event loop choices (``Settings.event_loop``, ``ops.event_loop``)."""


def default_data_dir() -> str:
    """``$XDG_DATA_HOME/relayq``, else ``~/.local/share/relayq`` (XDG base directories)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "relayq")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings shared by producers and workers. Seconds are floats."""

    redis_url: str | None = None
    """None means the embedded default: a local redis-server under ``data_dir``."""
    redis_connect_timeout: float = 5.0
    """Longest wait for a connection to Redis (TCP or unix socket)."""
    redis_timeout: float = 5.0
    """Longest wait for a Redis reply; then the call fails (RedisUnavailableError in a
    producer, a retried call in a worker). A worker's clients wait 1 s longer: they also
    carry its blocking stream reads (up to 1 s)."""
    data_dir: str = msgspec.field(default_factory=default_data_dir)
    """Folder of the embedded redis-server: ``$XDG_DATA_HOME/relayq`` (else
    ``~/.local/share/relayq``), the same from any working directory."""
    namespace: str = "relayq"
    partitions: int = 16
    priorities: str = DEFAULT_PRIORITIES
    """The namespace's priority levels, highest first: ``name[=number],...`` (see
    ``streams.priority_levels``). Fixed once used, like ``partitions``."""
    max_payload_bytes: int = 64 * 1024
    dedup_window: float = 300.0
    max_attempts: int = 3
    max_stalls: int = 2
    """Times a message may be recovered after an attempt that started and never finished
    (its worker died or was cut off mid-send); one more and it is dead-lettered as
    ``stalled``. Counted apart from ``max_attempts``, so a worker crash unrelated to the
    message does not spend its retries (BullMQ's ``maxStalledCount``)."""
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    concurrency: int = 64
    """Deliveries in flight at once per worker process (distinct conversations)."""
    read_count: int = 200
    """Entries per read (XREADGROUP / XAUTOCLAIM) of each stream; also the unread window a
    stream takes before messages wait in their tenant's list (see ``consumers.fair_read``)."""
    read_ahead: int = 2000
    """Entries of one partition a worker holds in memory at most (whatever the backlog:
    the rest waits in Redis, tenants admitted in turn)."""
    lease_ttl: float = 30.0
    send_timeout: float = 10.0
    """Longest a single delivery attempt may take (also the HTTP timeout)."""
    shutdown_grace: float = 10.0
    metrics_interval: float = 30.0
    metrics_port: int = 0
    """A worker's Prometheus endpoint on 127.0.0.1 (``consumers.worker_metrics_export``);
    0 = none."""
    metrics_top_tenants: int = 20
    """Tenants that get a ``tenant`` label of their own in metrics (the busiest); the rest
    are counted as ``other``."""
    otlp_metrics: bool = False
    """Export a worker's metrics over OTLP/HTTP (``consumers.otlp_metrics``; the
    ``relayq[otlp]`` extra); where to, from the standard ``OTEL_*`` variables."""
    tenant_cap: int = 5
    """Sends of one tenant in flight at once, across all workers (0 = no cap)."""
    global_rate: float = 80.0
    """Sends per second across all workers and tenants (0 = unlimited)."""
    global_burst: int = 10
    """Sends allowed at once before the global rate applies."""
    tenant_rate: float = 0.0
    """Default per-tenant sends per second (0 = none; set per tenant at run time)."""
    tenant_burst: int = 5
    sender_rate: float = 0.0
    """Default per-sender sends per second (0 = none; set per sender at run time)."""
    sender_burst: int = 5
    keep_delivered: float = 3600.0
    """Seconds a delivered message's outcome record is kept (0 = no records of delivered
    messages; the counters are kept all the same)."""
    keep_delivered_count: int = 1000
    """Most delivered records kept per partition (the oldest go first)."""
    keep_dead_lettered: float = 86400.0
    """Seconds a dead-lettered message's outcome record is kept (0 = none; the dead letter
    itself stays in the dead-letter stream until replayed, deleted or purged)."""
    keep_dead_lettered_count: int = 10000
    """Most dead-lettered records kept per partition."""
    outcome_records: bool = True
    """Keep each message's last known state (accepted, delayed, in flight, retrying) in
    Redis for ``message show``; off: only the finished states' records (above) are kept.
    Costs one small hash field per queued message (see bench/RESULTS.md)."""
    search_index: bool = True
    """Index the kept finished records by conversation and recipient (``{ns:P}:outcomes:lookup``)
    so they can be searched (``message list --conversation/--recipient``): costs the
    acknowledging script about 9 µs of Redis time and each kept record about 300 B (see
    bench/RESULTS.md). Off: no new members (those written before are still trimmed)."""
    events_keep: int = 10000
    """Outcome events kept per partition in ``{ns:P}:events`` (``Producer.events()``);
    0 = no events."""
    deliverer: str = "webhook"
    """``webhook``, ``channels`` (an adapter per channel: ``RELAYQ_CHANNELS``), ``sink``
    (records in Redis, for demos), ``noop`` or ``module:factory``."""
    event_loop: str = "auto"
    """A worker's event loop: ``auto`` (uvloop if installed), ``uvloop`` or ``asyncio``."""
    webhook_url: str | None = None
    webhook_secret: str | None = None
    """Signs each webhook request (``X-Relayq-Signature``); never printed or logged."""
    webhook_headers: str | None = None
    """Headers every webhook request carries (a provider's auth): a JSON object of names to
    values, e.g. ``{"Authorization": "Bearer ..."}``; never printed or logged."""
    channels: str = DEFAULT_CHANNELS
    """With ``deliverer=channels``: each channel's adapters, ``name=adapter[>fallback...]``
    comma-separated (``consumers.channel_router``). Adapters: whatsapp, twilio, sendgrid,
    smtp, webhook, sink, noop."""
    default_channel: str = "webhook"
    """The channel of a message that names none (``deliverer=channels``)."""
    global_cap: int = 0
    """Sends in flight at once across all workers and tenants (0 = no cap)."""
    channel_limits: str | None = None
    """Each channel's limits across all workers, a JSON object: ``{"email": {"rate": 10,
    "cap": 5}, "whatsapp": {"rate": 5, "cap": 3, "burst": 1}}`` (rate: sends/s, cap: sends
    in flight; 0 or absent = none). ``relayq limits --channel`` overrides at run time."""
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    """Meta Graph API base URL (version included); a local provider's in tests."""
    whatsapp_token: str | None = None
    """WhatsApp Cloud API access token (bearer); never printed or logged."""
    whatsapp_phone_number_id: str | None = None
    """The sending phone number id of messages without a ``sender``."""
    whatsapp_app_secret: str | None = None
    """The Meta app secret: receipts check ``X-Hub-Signature-256`` with it."""
    whatsapp_verify_token: str | None = None
    """The token Meta's webhook verification (``hub.verify_token``) must present."""
    twilio_api_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    """Twilio auth token (basic auth, and ``X-Twilio-Signature`` of receipts)."""
    twilio_from: str | None = None
    """The From number (or a Messaging Service SID, ``MG...``) of messages without a sender."""
    twilio_status_callback: str | None = None
    """The public URL of relayq's Twilio receipts endpoint (``.../v1/receipts/twilio``);
    each message's ``StatusCallback`` (unset: no receipts asked)."""
    sendgrid_api_url: str = "https://api.sendgrid.com"
    sendgrid_api_key: str | None = None
    email_from: str | None = None
    """The From address of emails without a sender."""
    smtp_url: str | None = None
    """``smtp://user:password@host:port`` (STARTTLS when offered) or ``smtps://`` (TLS);
    needs the ``relayq[smtp]`` extra; never printed or logged."""
    direct_send: bool = False
    """Producers deliver each message themselves through the deliverer above instead of
    queueing it (a rollback switch): no Redis, so no ordering, limits, retries, DLQ or dedup."""

    def __post_init__(self) -> None:
        _check_positive_int("partitions", self.partitions, maximum=16384)
        self._check_documents()
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigurationError(
                f"event_loop must be {', '.join(EVENT_LOOPS)}, got {self.event_loop!r}"
            )
        try:
            PriorityLevels.parse(self.priorities)
        except ConfigurationError as exc:
            raise ConfigurationError(f"priorities: {exc}") from None
        _check_positive_int("max_payload_bytes", self.max_payload_bytes, maximum=16 * 1024 * 1024)
        _check_positive_int("max_attempts", self.max_attempts, maximum=1000)
        _check_count("max_stalls", self.max_stalls, maximum=1000)
        _check_positive_int("concurrency", self.concurrency, maximum=100_000)
        _check_positive_int("read_count", self.read_count, maximum=100_000)
        _check_positive_int("read_ahead", self.read_ahead, maximum=1_000_000)
        if self.read_ahead < self.read_count:
            raise ConfigurationError(
                f"read_ahead ({self.read_ahead}) must be at least read_count ({self.read_count})"
            )
        _check_positive_int("global_burst", self.global_burst, maximum=1_000_000)
        _check_positive_int("tenant_burst", self.tenant_burst, maximum=1_000_000)
        _check_positive_int("sender_burst", self.sender_burst, maximum=1_000_000)
        _check_positive_int("keep_delivered_count", self.keep_delivered_count, maximum=10**7)
        _check_positive_int(
            "keep_dead_lettered_count", self.keep_dead_lettered_count, maximum=10**7
        )
        _check_count("events_keep", self.events_keep, maximum=10**7, zero=" (off)")
        _check_count("metrics_port", self.metrics_port, maximum=65535, zero=" (off)")
        _check_positive_int("metrics_top_tenants", self.metrics_top_tenants, maximum=10_000)
        _check_count("tenant_cap", self.tenant_cap, maximum=1_000_000, zero=" (off)")
        _check_count("global_cap", self.global_cap, maximum=1_000_000, zero=" (off)")
        for name in ("global_rate", "tenant_rate", "sender_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be >= 0 per second (0 = off), got {value}")
        for name in (
            "redis_connect_timeout",
            "redis_timeout",
            "dedup_window",
            "backoff_base",
            "backoff_max",
            "lease_ttl",
            "send_timeout",
            "shutdown_grace",
            "metrics_interval",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigurationError(
                    f"{name} must be a positive number of seconds, got {value}"
                )
        for name in ("keep_delivered", "keep_dead_lettered"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(
                    f"{name} must be >= 0 seconds (0 = no records), got {value}"
                )
        if not self.namespace or any(c in self.namespace for c in "{}: \t\r\n"):
            raise ConfigurationError(
                f"namespace {self.namespace!r} must be non-empty without braces, colons or spaces"
            )
        if self.lease_ttl < 3 * self.send_timeout:
            raise ConfigurationError(
                f"lease_ttl ({self.lease_ttl}s) must be at least 3x send_timeout "
                f"({self.send_timeout}s): a worker must finish any send it starts before "
                "its lease can run out, or order could break on hand-over"
            )

    def _check_documents(self) -> None:
        """The settings written as JSON documents."""
        if self.webhook_headers is not None:
            parse_headers(self.webhook_headers)
        if self.channel_limits is not None:
            parse_channel_limits(self.channel_limits)

    @property
    def priority_levels(self) -> PriorityLevels:
        """``priorities`` parsed (cached: the same text gives the same object)."""
        return PriorityLevels.parse(self.priorities)

    @property
    def slot_ttl(self) -> float:
        """How long a tenant in-flight slot outlives a worker that died holding it."""
        return 2 * self.send_timeout + 1

    @property
    def flow_control(self) -> bool:
        """Whether any cluster-wide limit is on (off: no admission round trips at all)."""
        return bool(self.tenant_cap or self.global_rate or self.tenant_rate or self.sender_rate)

    @property
    def lease_renew_interval(self) -> float:
        """How often an owner renews its leases."""
        return self.lease_ttl / 6

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return msgspec.structs.replace(self, **changes)

    def __repr__(self) -> str:
        """Every field but the secrets' values (a traceback or a log may show settings)."""
        fields = msgspec.structs.asdict(self)
        for name in SECRET_FIELDS:
            if fields[name] is not None:
                fields[name] = "***"
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment, then ``overrides`` (keyword arguments) on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, (field, parse, _doc) in ENVIRONMENT.items():
            raw = env.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError:
                shown = variable if field in SECRET_FIELDS else f"{variable}={raw!r}"
                raise ConfigurationError(f"{shown} is not {_UNITS[parse]}") from None
        values.update(overrides)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None
        except ConfigurationError as exc:
            # The checks speak of fields; name the variables that set them.
            named = [
                variable if field in SECRET_FIELDS else f"{variable}={env[variable]!r}"
                for variable, (field, _parse, _doc) in ENVIRONMENT.items()
                if env.get(variable)
                and field not in overrides
                and re.search(rf"\b{field}\b", str(exc))
            ]
            if not named:
                raise
            raise ConfigurationError(f"{', '.join(named)}: {exc}") from None

    @property
    def data_path(self) -> Path:
        """``data_dir`` as an absolute path (a relative one is taken from the working
        directory; ``RELAYQ_DATA_DIR`` is made absolute when it is read)."""
        return Path(self.data_dir).expanduser().absolute()


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_headers(text: str) -> dict[str, str]:
    """``webhook_headers`` as a dict; a ConfigurationError that never repeats a value (they
    hold credentials) when it is not a JSON object of header names to single-line values."""
    problem = "webhook_headers must be a JSON object of header names to text values"
    try:
        headers = msgspec.json.decode(text, type=dict[str, str])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ConfigurationError(problem) from None
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"{problem}: {name[:40]!r} is not a header name")
        if "\r" in value or "\n" in value:
            raise ConfigurationError(f"{problem}: the value of {name!r} holds a line break")
    return headers


class ChannelLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One channel's limits (0 = none)."""

    cap: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    rate: Annotated[float, msgspec.Meta(ge=0, le=1_000_000)] = 0.0
    burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1


def parse_channel_limits(text: str) -> dict[str, ChannelLimits]:
    """``channel_limits`` as a dict; ConfigurationError naming the problem."""
    try:
        limits = msgspec.json.decode(text, type=dict[str, ChannelLimits])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigurationError(
            f'channel_limits must be a JSON object like {{"email": {{"rate": 10, "cap": 5}}}}: '
            f"{exc}"
        ) from None
    for channel in limits:
        if not re.fullmatch(CHANNEL_PATTERN, channel):
            raise ConfigurationError(f"channel_limits: {channel!r} is not a channel name")
    return limits


def _check_count(name: str, value: int, *, maximum: int, zero: str = "") -> None:
    """A whole number from 0 (``zero`` says what 0 means) to ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ConfigurationError(f"{name} must be 0{zero} to {maximum}, got {value!r}")


def _check_positive_int(name: str, value: int, *, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ConfigurationError(f"{name} must be an integer from 1 to {maximum}, got {value!r}")


def _seconds(raw: str) -> float:
    return float(raw)


def _per_second(raw: str) -> float:
    return float(raw)


def _switch(raw: str) -> bool:
    word = raw.strip().lower()
    if word not in _SWITCH_WORDS:
        raise ValueError(raw)
    return _SWITCH_WORDS[word]


_SWITCH_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_SWITCH_WORDS.update({"0": False, "false": False, "no": False, "off": False})


def _integer(raw: str) -> int:
    return int(raw)


def _text(raw: str) -> str:
    return raw


def _folder(raw: str) -> str:
    """A folder, made absolute once (a relative one against the working directory)."""
    return str(Path(raw).expanduser().absolute())


_UNITS: dict[Callable[[str], Any], str] = {
    _seconds: "a number of seconds",
    _per_second: "a number of sends per second",
    _integer: "a whole number",
    _text: "text",
    _folder: "a folder",
    _switch: "a switch (1, true, yes, on or 0, false, no, off)",
}
"""What each parser expects, for the error message of a value it cannot read."""


ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "REDIS_URL": ("redis_url", _text, "redis://, rediss:// or unix:// URL; unset = embedded"),
    "RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS": (
        "redis_connect_timeout",
        _seconds,
        "longest wait to connect to Redis",
    ),
    "RELAYQ_REDIS_TIMEOUT_SECONDS": (
        "redis_timeout",
        _seconds,
        "longest wait for a Redis reply (workers: +1 s)",
    ),
    "RELAYQ_DATA_DIR": ("data_dir", _folder, "folder of the embedded redis-server (AOF on)"),
    "RELAYQ_NAMESPACE": ("namespace", _text, "prefix of every key"),
    "RELAYQ_PARTITIONS": ("partitions", _integer, "partitions per namespace (fixed once used)"),
    "RELAYQ_PRIORITIES": (
        "priorities",
        _text,
        "priority levels, highest first: name[=number],... (fixed once used)",
    ),
    "RELAYQ_MAX_PAYLOAD_BYTES": ("max_payload_bytes", _integer, "largest payload, as JSON"),
    "RELAYQ_DEDUP_WINDOW_SECONDS": ("dedup_window", _seconds, "how long a dedup key holds"),
    "RELAYQ_MAX_ATTEMPTS": ("max_attempts", _integer, "delivery attempts before the DLQ"),
    "RELAYQ_MAX_STALLS": ("max_stalls", _integer, "stalls survived before the DLQ"),
    "RELAYQ_BACKOFF_BASE_SECONDS": ("backoff_base", _seconds, "first retry delay"),
    "RELAYQ_BACKOFF_MAX_SECONDS": ("backoff_max", _seconds, "longest retry delay"),
    "RELAYQ_CONCURRENCY": ("concurrency", _integer, "deliveries in flight per worker"),
    "RELAYQ_READ_COUNT": ("read_count", _integer, "entries per stream read; the unread window"),
    "RELAYQ_READ_AHEAD": ("read_ahead", _integer, "entries per partition held in memory"),
    "RELAYQ_LEASE_TTL_SECONDS": ("lease_ttl", _seconds, "partition lease lifetime"),
    "RELAYQ_SEND_TIMEOUT_SECONDS": ("send_timeout", _seconds, "longest delivery attempt"),
    "RELAYQ_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace", _seconds, "drain time on SIGTERM"),
    "RELAYQ_METRICS_INTERVAL_SECONDS": ("metrics_interval", _seconds, "metrics log period"),
    "RELAYQ_METRICS_PORT": ("metrics_port", _integer, "a worker's Prometheus port (0 = none)"),
    "RELAYQ_METRICS_TOP_TENANTS": (
        "metrics_top_tenants",
        _integer,
        "tenants labelled by name in metrics; the rest are other",
    ),
    "RELAYQ_OTLP_METRICS": (
        "otlp_metrics",
        _switch,
        "export a worker's metrics over OTLP/HTTP to OTEL_EXPORTER_OTLP_* (relayq[otlp])",
    ),
    "RELAYQ_TENANT_CAP": ("tenant_cap", _integer, "sends in flight per tenant (0 = off)"),
    "RELAYQ_GLOBAL_RATE": ("global_rate", _per_second, "sends per second, all workers (0 = off)"),
    "RELAYQ_GLOBAL_BURST": ("global_burst", _integer, "sends at once before the rate applies"),
    "RELAYQ_TENANT_RATE": ("tenant_rate", _per_second, "default sends/s per tenant (0 = off)"),
    "RELAYQ_TENANT_BURST": ("tenant_burst", _integer, "per-tenant burst"),
    "RELAYQ_SENDER_RATE": ("sender_rate", _per_second, "default sends/s per sender (0 = off)"),
    "RELAYQ_SENDER_BURST": ("sender_burst", _integer, "per-sender burst"),
    "RELAYQ_KEEP_DELIVERED_SECONDS": (
        "keep_delivered",
        _seconds,
        "how long a delivered record is kept (0 = none)",
    ),
    "RELAYQ_KEEP_DELIVERED_COUNT": (
        "keep_delivered_count",
        _integer,
        "most delivered records per partition",
    ),
    "RELAYQ_KEEP_DEAD_LETTERED_SECONDS": (
        "keep_dead_lettered",
        _seconds,
        "how long a dead-lettered record is kept (0 = none)",
    ),
    "RELAYQ_KEEP_DEAD_LETTERED_COUNT": (
        "keep_dead_lettered_count",
        _integer,
        "most dead-lettered records per partition",
    ),
    "RELAYQ_OUTCOME_RECORDS": (
        "outcome_records",
        _switch,
        "keep waiting/in-flight/retrying states for message show (1/0)",
    ),
    "RELAYQ_SEARCH_INDEX": (
        "search_index",
        _switch,
        "index kept records by conversation and recipient for search (1/0)",
    ),
    "RELAYQ_EVENTS_KEEP": ("events_keep", _integer, "outcome events kept per partition (0 = off)"),
    "RELAYQ_DELIVERER": (
        "deliverer",
        _text,
        "webhook | channels | sink | noop | module:factory",
    ),
    "RELAYQ_EVENT_LOOP": (
        "event_loop",
        _text,
        "a worker's loop: auto (uvloop if installed) | uvloop | asyncio",
    ),
    "RELAYQ_WEBHOOK_URL": ("webhook_url", _text, "where the webhook deliverer POSTs"),
    "RELAYQ_WEBHOOK_SECRET": ("webhook_secret", _text, "HMAC-SHA256 key of X-Relayq-Signature"),
    "RELAYQ_WEBHOOK_HEADERS": (
        "webhook_headers",
        _text,
        "JSON object of headers every webhook request carries",
    ),
    "RELAYQ_CHANNELS": (
        "channels",
        _text,
        "channel=adapter[>fallback],... (with RELAYQ_DELIVERER=channels)",
    ),
    "RELAYQ_DEFAULT_CHANNEL": ("default_channel", _text, "channel of messages naming none"),
    "RELAYQ_GLOBAL_CAP": ("global_cap", _integer, "sends in flight, all workers (0 = off)"),
    "RELAYQ_CHANNEL_LIMITS": (
        "channel_limits",
        _text,
        'per channel, JSON: {"email": {"rate": 10, "cap": 5}}',
    ),
    "RELAYQ_WHATSAPP_API_URL": ("whatsapp_api_url", _text, "Graph API base URL with version"),
    "RELAYQ_WHATSAPP_TOKEN": ("whatsapp_token", _text, "WhatsApp Cloud API access token"),
    "RELAYQ_WHATSAPP_PHONE_NUMBER_ID": (
        "whatsapp_phone_number_id",
        _text,
        "sending phone number id of messages without a sender",
    ),
    "RELAYQ_WHATSAPP_APP_SECRET": (
        "whatsapp_app_secret",
        _text,
        "Meta app secret: checks receipts' X-Hub-Signature-256",
    ),
    "RELAYQ_WHATSAPP_VERIFY_TOKEN": (
        "whatsapp_verify_token",
        _text,
        "hub.verify_token of Meta's webhook verification",
    ),
    "RELAYQ_TWILIO_API_URL": ("twilio_api_url", _text, "Twilio REST API base URL"),
    "RELAYQ_TWILIO_ACCOUNT_SID": ("twilio_account_sid", _text, "Twilio account SID (AC...)"),
    "RELAYQ_TWILIO_AUTH_TOKEN": ("twilio_auth_token", _text, "Twilio auth token"),
    "RELAYQ_TWILIO_FROM": ("twilio_from", _text, "From number or MG... of messages without one"),
    "RELAYQ_TWILIO_STATUS_CALLBACK": (
        "twilio_status_callback",
        _text,
        "public URL of relayq's /v1/receipts/twilio",
    ),
    "RELAYQ_SENDGRID_API_URL": ("sendgrid_api_url", _text, "SendGrid API base URL"),
    "RELAYQ_SENDGRID_API_KEY": ("sendgrid_api_key", _text, "SendGrid API key"),
    "RELAYQ_EMAIL_FROM": ("email_from", _text, "From address of emails without a sender"),
    "RELAYQ_SMTP_URL": ("smtp_url", _text, "smtp[s]://user:password@host:port (relayq[smtp])"),
    "RELAYQ_DIRECT_SEND": ("direct_send", _switch, "producers deliver directly, no queue (1/0)"),
}
"""Environment variable -> (Settings field, parser, description)."""
