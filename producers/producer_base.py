"""What ``Producer`` (asyncio) and ``SyncProducer`` (blocking) share, written once: their
settings, keys and direct-send switch, how a call's fields become a request, and the
preparation of a batch. The two subclasses differ only in how they talk to Redis and to
the deliverer (``await`` or not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from relayq.producers.direct_send import deliverer_from_settings
from relayq.producers.enqueue_command import EnqueueOptions
from relayq.producers.send_batch import PendingCommand, prepare_batch
from relayq.producers.send_request import SendRequest, SendResult, request_from
from relayq.streams.deliverer import Deliverer
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from relayq.streams.telemetry import tracing_enabled

__all__ = ("BATCH_SIZE", "ProducerBase")

_log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
"""Commands per pipelined round trip of ``send_many``."""


class ProducerBase:
    """Settings, keys and the direct-send switch of one producer."""

    def __init__(self, settings: Settings | None, *, direct: bool | None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.keys = Keys.from_settings(self.settings)
        self.direct: bool = self.settings.direct_send if direct is None else direct
        """True: ``send`` delivers through the deliverer and never touches Redis."""
        self._enqueue_options = EnqueueOptions.from_settings(self.settings)
        self._checked = False

    def _direct_deliverer(self, fallback: Deliverer | None) -> Deliverer | None:
        """A deliverer the producer builds (and owns) for its direct send: none when the
        switch is off or the caller gave one (``fallback``)."""
        if not self.direct or fallback is not None:
            return None
        return deliverer_from_settings(self.settings)

    @staticmethod
    def _request(fields: Mapping[str, Any]) -> SendRequest:
        return request_from(fields)

    def _prepare_batch(
        self, requests: Iterable[SendRequest], batch_id: str
    ) -> tuple[list[SendResult | None], list[PendingCommand]]:
        return prepare_batch(
            requests,
            settings=self.settings,
            keys=self.keys,
            options=self._enqueue_options,
            trace=tracing_enabled(),
            batch=batch_id,
        )

    def _batch_written(self, batch_id: str, error: Exception | None) -> None:
        """Log a batch record Redis did not take: its messages are queued all the same
        (their results say so), only ``batch show`` lacks the totals."""
        if error is not None:
            _log.warning("batch_record_failed", batch_id=batch_id, error=str(error))
