"""The worker: owns partitions by lease and delivers their messages in conversation order.

Lifecycle (``run``): register and take partitions -> deliver -> on stop (SIGTERM/SIGINT,
``request_stop()``, or burst mode finding nothing left) shut down in a fixed order:

1. leave the live-worker set, so the others take our partitions on their next tick;
2. stop reading and forget queued (not yet started) entries: they stay pending in Redis;
3. let in-flight deliveries finish, up to ``shutdown_grace`` seconds, then cancel them;
4. flush acknowledgements, release every lease (the others need not wait for it to expire);
5. close the deliverer and the Redis client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid

import structlog
from redis.asyncio import Redis

from relayq.consumers.acknowledger import Acknowledger
from relayq.consumers.admission import Admission
from relayq.consumers.attempt_records import AttemptRecords
from relayq.consumers.attempt_watchdog import AttemptWatchdog
from relayq.consumers.backlog import measure_backlog
from relayq.consumers.channel_gate import ChannelGate
from relayq.consumers.conversation_scheduler import ConversationScheduler
from relayq.consumers.dead_letters import DeadLetters
from relayq.consumers.delivery import DeliveryRunner
from relayq.consumers.envelope import PartitionState
from relayq.consumers.fair_read import FairRead
from relayq.consumers.metrics import WorkerMetrics
from relayq.consumers.otlp_metrics import start_otlp_metrics
from relayq.consumers.ownership import Ownership
from relayq.consumers.partition_lease import LeaseTable
from relayq.consumers.partition_reader import PartitionReader
from relayq.consumers.pause_state import PauseState
from relayq.consumers.schedule_firing import ScheduleFiring
from relayq.consumers.send_gate import SendGate
from relayq.consumers.stall_marks import StallMarks
from relayq.consumers.stream_maintenance import StreamMaintenance
from relayq.consumers.systemd_notify import notify
from relayq.consumers.task_cancel import cancel_and_wait
from relayq.consumers.watchdog_ping import SystemdPings, status_line
from relayq.consumers.worker_metrics_export import serve_metrics
from relayq.streams.deliverer import Deliverer
from relayq.streams.keys import Keys
from relayq.streams.namespace_shape import check_namespace
from relayq.streams.redis_client import REDIS_UNAVAILABLE, create_client
from relayq.streams.scripts import Scripts
from relayq.streams.settings import Settings

__all__ = ("Worker",)

_log = structlog.get_logger(__name__)
_PROMOTE_INTERVAL = 0.2
_TRIM_INTERVAL = 10.0
_BURST_CHECK_INTERVAL = 0.2


def _new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker process's delivery engine. ``await worker.run()`` until stopped."""

    def __init__(
        self,
        deliverer: Deliverer,
        settings: Settings | None = None,
        *,
        client: Redis | None = None,
        burst: bool = False,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.worker_id = worker_id or _new_worker_id()
        self.burst = burst
        self.metrics = WorkerMetrics(default_channel=self.settings.default_channel)
        self.keys = Keys.from_settings(self.settings)
        self._owns_client = client is None
        self.client = (
            client if client is not None else create_client(self.settings, blocking_reads=True)
        )
        self.deliverer = deliverer
        self._stop = asyncio.Event()
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._build_parts()

    def _build_parts(self) -> None:
        settings, client, keys = self.settings, self.client, self.keys
        scripts = Scripts(client)
        self.acknowledger = Acknowledger(client, scripts, keys, settings, self.worker_id)
        self.admission = Admission(client, scripts, keys, settings, self.worker_id)
        self.pauses = PauseState()
        self.channels = ChannelGate(client, scripts, keys, settings, self.worker_id)
        dead_letters = DeadLetters(scripts, keys, self.worker_id, settings)
        self.watchdog = AttemptWatchdog(settings.send_timeout)
        runner = DeliveryRunner(
            settings=settings,
            client=client,
            keys=keys,
            deliverer=self.deliverer,
            acknowledger=self.acknowledger,
            admission=self.admission,
            dead_letters=dead_letters,
            metrics=self.metrics,
            watchdog=self.watchdog,
            attempt_records=AttemptRecords(scripts, keys, settings, self.worker_id),
            stall_marks=StallMarks(
                client, scripts, keys, check_delivered=settings.keep_delivered > 0
            ),
            channels=self.channels,
            pauses=self.pauses,
            worker_id=self.worker_id,
        )
        self.scheduler = ConversationScheduler(
            runner,
            settings.concurrency,
            buffer_limit=settings.read_ahead,
            gate=lambda requeue: SendGate(self.admission, self.pauses, requeue, self.channels),
            levels=keys.levels.names,
        )
        self._reader = PartitionReader(
            client=client,
            keys=keys,
            consumer=self.worker_id,
            read_count=settings.read_count,
            block_ms=max(10, min(1000, round(settings.lease_renew_interval * 500))),
            max_stalls=settings.max_stalls,
            scheduler=self.scheduler,
            dead_letters=dead_letters,
            metrics=self.metrics,
            fair_read=FairRead(
                client=client,
                scripts=scripts,
                keys=keys,
                consumer=self.worker_id,
                count=settings.read_count,
                pauses=self.pauses,
            ),
        )
        self.ownership = Ownership(
            client=client,
            keys=keys,
            leases=LeaseTable(client, scripts, keys, settings.lease_ttl),
            worker_id=self.worker_id,
            lease_ttl=settings.lease_ttl,
        )
        window = settings.read_count
        self._maintenance = StreamMaintenance(client, scripts, keys, self.worker_id, window)
        self._schedules = ScheduleFiring(client, scripts, keys, window)

    def describe(self) -> dict[str, object]:
        """What this worker holds now (for debugging a worker that seems stuck)."""
        return {
            "partitions": sorted(self.ownership.held),
            "stopping": self._stop.is_set(),
            "scheduler_idle": self.scheduler.idle,
            "buffered": self.scheduler.buffered,
            "waiting": self.scheduler.waiting,
            **self.admission.stats(),
            **self.metrics.snapshot(),
        }

    def request_stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    # -- partitions ---------------------------------------------------------------------

    async def _ownership_tick(self) -> None:
        """Act on each step of ownership before the next step's round trip (see ownership)."""
        ownership = self.ownership
        for state in await ownership.renew():
            self._drop_partition(state)
        for state in ownership.to_release():
            self._release_later(state)
        for state in await ownership.acquire():
            self._start_partition(state)

    def _start_partition(self, state: PartitionState) -> None:
        task = asyncio.create_task(self._read_partition(state))
        self._readers[state.partition] = task

    async def _read_partition(self, state: PartitionState) -> None:
        try:
            await self._reader.run(state)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("partition_reader_failed", partition=state.partition)
            # Give the partition back (drain, release the lease): the next tick takes it
            # again with a fresh reader, here or on another worker. Only dropping it would
            # leave its lease renewed forever with nobody reading.
            if self.ownership.abandon(state):
                self._release_later(state)

    def _drop_partition(self, state: PartitionState) -> None:
        self.metrics.released_on_handover += self.scheduler.drop_partition(state)
        task = self._readers.get(state.partition)
        if task is not None and not task.done():
            task.cancel()

    def _release_later(self, state: PartitionState) -> None:
        task = asyncio.create_task(self._drain_and_release(state))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _drain_and_release(self, state: PartitionState) -> None:
        """Stop the partition, let its sends finish and their acks flush, then hand the lease
        back. Should that fail, the lease runs out on its own (nothing is lost: what was not
        acknowledged stays pending for the next owner)."""
        try:
            await self._drain_partition(state)
            await self.ownership.release(state)
        except Exception as exc:
            _log.warning("partition_release_failed", partition=state.partition, error=str(exc))
        finally:
            self.ownership.forget(state)

    async def _drain_partition(self, state: PartitionState) -> None:
        self._drop_partition(state)
        # An attempt lasts at most two send timeouts: one to get a connection, one for the
        # request from the moment it left (see AttemptWatchdog).
        deadline = time.monotonic() + 2 * self.settings.send_timeout + 1
        while state.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.acknowledger.drain()

    async def _release_all(self) -> None:
        """Drain and release every partition (shutdown), those being released first."""
        await asyncio.gather(*self._releases)
        held = list(self.ownership.held.values())
        await asyncio.gather(*(self._drain_and_release(state) for state in held))

    # -- loops --------------------------------------------------------------------------

    async def _ownership_loop(self) -> None:
        interval = min(0.5, self.settings.lease_renew_interval)
        while True:
            try:
                await self._ownership_tick()
                if await self.pauses.refresh(self.client, self.keys):
                    self.scheduler.resume_paused()
                await self.channels.refresh()
            except REDIS_UNAVAILABLE as exc:
                # The fence keeps us from sending once our leases may have lapsed.
                _log.warning("ownership_tick_failed", error=str(exc))
            await asyncio.sleep(interval)

    async def _maintenance_loop(self) -> None:
        last_trim = time.monotonic()
        while True:
            await asyncio.sleep(_PROMOTE_INTERVAL)
            try:
                await self._maintenance.promote_due(self.ownership.held.values())
                await self._schedules.fire_due(self.ownership.held.values())
                if time.monotonic() - last_trim >= _TRIM_INTERVAL:
                    last_trim = time.monotonic()
                    for state in list(self.ownership.held.values()):
                        await self._maintenance.trim(state)
            except Exception as exc:
                _log.warning("maintenance_failed", error=str(exc))

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_interval)
            _log.info(
                "metrics",
                worker=self.worker_id,
                partitions=sorted(self.ownership.held),
                **self.metrics.snapshot(),
            )

    async def _burst_loop(self) -> None:
        while True:
            await asyncio.sleep(_BURST_CHECK_INTERVAL)
            if not self.scheduler.idle:
                continue
            backlog = await measure_backlog(self.client, self.keys)
            if backlog.drained and self.scheduler.idle:
                _log.info("burst_done", delivered=self.metrics.delivered)
                self._stop.set()
                return

    # -- run ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until stopped; returns after a complete, orderly shutdown."""
        await check_namespace(self.client, self.keys)
        otlp = start_otlp_metrics(self.settings, self.metrics, self.worker_id)  # None: off
        _log.info(
            "worker_started",
            worker=self.worker_id,
            burst=self.burst,
            partitions=self.keys.partitions,
            concurrency=self.settings.concurrency,
            event_loop=type(asyncio.get_running_loop()).__module__,
        )
        background = [
            asyncio.create_task(self.acknowledger.run(), name="acks"),
            asyncio.create_task(self.admission.run(), name="admission"),
            asyncio.create_task(self.channels.run(), name="channel_releases"),
            asyncio.create_task(self.watchdog.run(), name="watchdog"),
            asyncio.create_task(self.scheduler.run(), name="lanes"),
            asyncio.create_task(self._ownership_loop(), name="ownership"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
            asyncio.create_task(self._metrics_loop(), name="metrics"),
        ]
        if self.burst:
            background.append(asyncio.create_task(self._burst_loop(), name="burst"))
        if self.settings.metrics_port:
            endpoint = serve_metrics(self.settings, self.metrics)
            background.append(asyncio.create_task(endpoint, name="metrics_endpoint"))
        notify("READY=1")
        pings = SystemdPings.start(self._status_line)  # WATCHDOG=1 and STATUS=
        stop = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([stop, *background], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and not task.cancelled() and task.exception():
                    _log.error(
                        "worker_task_failed", task=task.get_name(), exc_info=task.exception()
                    )
        finally:
            pings.stopping()  # STOPPING=1
            await self._shutdown(background)
            if otlp is not None:
                await otlp.aclose()  # exports the final counts
            stop.cancel()
            await pings.aclose()

    def _status_line(self) -> str:
        return status_line(self.metrics, len(self.ownership.held), self.keys.partitions)

    async def _shutdown(self, background: list[asyncio.Task[None]]) -> None:
        by_name = {task.get_name(): task for task in background}
        await cancel_and_wait(by_name.pop("ownership"))
        with contextlib.suppress(Exception):
            await self.ownership.leave()
        for state in list(self.ownership.held.values()):
            self._drop_partition(state)
        await cancel_and_wait(*self._readers.values())
        deadline = time.monotonic() + self.settings.shutdown_grace
        while self.metrics.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await cancel_and_wait(by_name.pop("lanes"))
        with contextlib.suppress(Exception):
            await self.acknowledger.drain()
            await self.admission.give_back()
            await self.channels.flush()
            await self._release_all()
        await cancel_and_wait(*by_name.values())
        _log.info(
            "worker_stopped",
            worker=self.worker_id,
            **self.admission.stats(),
            **self.metrics.snapshot(),
        )
        await self.deliverer.aclose()
        if self._owns_client:
            await self.client.aclose()
