"""Every Redis key relayq uses, built in this one module.

Per-partition keys share the hash tag ``{ns:P}`` so that each multi-key command and Lua
script touches one Redis Cluster slot. Namespace-wide keys (worker registry, meta) are
only ever used by single-key commands.

    {ns:P}:<level>                 streams, one per priority level (consumer group GROUP):
                                   {ns:P}:high, :normal, :low by default. Each holds a
                                   short window of admitted entries (about RELAYQ_READ_COUNT
                                   unread) and those read and not yet acknowledged
    {ns:P}:<level>:w:<tenant>      list: the tenant's messages of that level waiting for
                                   admission into the stream, oldest first (deleted when
                                   empty, so an idle tenant costs nothing)
    {ns:P}:<level>:ring            list: the tenants whose waiting list exists, in the order
                                   they take turns (each appears once)
    {ns:P}:<level>:unread          string: entries added to the level's stream and not yet
                                   read by the group (kept by the scripts; reset to the truth
                                   whenever a read drains the stream)
    {ns:P}:dlq                     dead-letter stream
    {ns:P}:dlq:index               sorted set, all scores 0: t NUL <tenant> NUL <padded entry
                                   id> and k NUL <kind> NUL <padded entry id> of each dead
                                   letter (streams.dead_letter_index)
    {ns:P}:delayed                 sorted set: message id -> due time (ms)
    {ns:P}:delayed:data            hash: message id -> "<priority>:<encoded message>"
    {ns:P}:dedup:<lt>.<lc>:<t>:<c>:<key>
                                   string: first message id sent with dedup key <key> in
                                   conversation <c> of tenant <t> (<lt>, <lc>: their lengths,
                                   so no tenant or conversation can pose as another); expires
                                   after the window
    {ns:P}:attempts                hash: stream entry id -> failed attempts so far
    {ns:P}:counts                  hash: "<state>:<level>:<tenant>" -> messages of that tenant
                                   and level delivered / dead-lettered so far (durable
                                   counters, written with the acknowledgement)
    {ns:P}:outcomes                hash: message id -> JSON outcome record (streams.outcome)
    {ns:P}:outcomes:<state>        sorted set: message id -> time it reached that final state
                                   (ms): the retention index of the records
    {ns:P}:outcomes:lookup         sorted set, all scores 0: c NUL <conversation> NUL <ms>
                                   NUL <message id>, and the same with r and <recipient>, of
                                   every kept finished record (<ms>: its at_ms, 13 digits;
                                   ops.message_search pages it BYLEX, newest first)
    {ns:P}:stalls                  hash: stream entry id -> attempts started and never seen
                                   to finish (+1 while one is in flight)
    {ns:P}:lease                   string: owning worker's lease token, with a TTL
    ns:workers                     sorted set: worker id -> heartbeat expiry (ms)
    ns:meta                        hash: partitions, priorities (fixed per namespace)
    {ns:P}:schedules               hash: repeatable schedule name -> encoded Schedule
    {ns:P}:schedules:due           sorted set: schedule name -> next due time (ms)
    ns:schedules                   hash: schedule name -> partition (to find one by name)
    ns:paused                      hash: paused scope ("all", "priority:<level>", "tenant:<t>",
                                   "channel:<c>", built by ``pause_scope``) -> 1, or why
                                   (a channel paused by its provider's credentials error)
    ns:sink                        list: what the ``sink`` deliverer delivered, in order
    ns:history                     stream: a point a minute of the finished counts, 61 kept
                                   (the dashboard's last-hour charts)

Flow control keys share one tag, ``{ns:flow}``, so one script call decides a whole round
of admissions for many tenants (on Redis Cluster they live on one shard; the traffic is
one call per round, not per message):

    {ns:flow}:t:<t>:leases         hash: worker id -> tenant slots it holds; "<worker>:w" ->
                                   slots it wants and could not get (fair shares)
    {ns:flow}:t:<t>:lease_expiry   sorted set: worker id -> expiry of its slots (ms)
    {ns:flow}:t:<t>:limits         hash: cap, rate, burst overriding the defaults
    {ns:flow}:t:<t>:pause          string with a TTL: provider asked this tenant to wait
    {ns:flow}:t:<t>:rate           string: GCRA theoretical arrival time (ms)
    {ns:flow}:s:<s>:limits         hash: rate, burst overriding the sender defaults
    {ns:flow}:s:<s>:pause          string with a TTL: provider asked this sender to wait
    {ns:flow}:s:<s>:rate           string: the sender's GCRA theoretical arrival time (ms)
    {ns:flow}:rate                 string: global GCRA theoretical arrival time (ms)
    {ns:flow}:limits               hash: rate, burst, cap overriding the global defaults
    {ns:flow}:in_flight            sorted set: send lease -> expiry (ms), the sends in flight
                                   under the global cap (only while RELAYQ_GLOBAL_CAP is on)
    {ns:flow}:channels             set: the channels with limits set at run time
    {ns:flow}:c:<c>:limits         hash: cap, rate, burst of one channel
    {ns:flow}:c:<c>:in_flight      sorted set: send lease -> expiry (ms) of the channel's
                                   sends in flight (consumers.channel_gate)
    {ns:flow}:c:<c>:rate           string: the channel's GCRA theoretical arrival time (ms)
    {ns:flow}:c:<c>:pause          string with a TTL: provider asked the channel to wait
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

from relayq.streams.priority_levels import DEFAULT_PRIORITIES, PriorityLevels

if TYPE_CHECKING:
    from relayq.streams.settings import Settings

__all__ = (
    "GROUP",
    "PAUSE_ALL",
    "RATE_BUCKET_MS",
    "TENANT_PAUSE_PREFIX",
    "CHANNEL_PAUSE_PREFIX",
    "Keys",
    "channel_pause_scope",
    "pause_scope",
    "priority_pause_scope",
    "sink_key",
    "tenant_pause_scope",
)

GROUP = "relayq"
"""The consumer group every relayq worker reads through."""

RATE_BUCKET_MS = 10_000
"""The width of a rate bucket (``Keys.rate_bucket``): rates are counted in 10 s steps."""

PAUSE_ALL = "all"
"""The ``ns:paused`` field that pauses the whole namespace."""


def priority_pause_scope(level: str) -> str:
    """The ``ns:paused`` field that pauses one priority level (by name)."""
    return f"priority:{level}"


TENANT_PAUSE_PREFIX = "tenant:"


def tenant_pause_scope(tenant: str) -> str:
    """The ``ns:paused`` field that pauses one tenant."""
    return f"{TENANT_PAUSE_PREFIX}{tenant}"


CHANNEL_PAUSE_PREFIX = "channel:"


def channel_pause_scope(channel: str) -> str:
    """The ``ns:paused`` field that pauses one channel."""
    return f"{CHANNEL_PAUSE_PREFIX}{channel}"


def pause_scope(
    *, priority: str | None = None, tenant: str | None = None, channel: str | None = None
) -> str:
    """The ``ns:paused`` field for a scope: the namespace (none given), one priority
    level (its name), one tenant or one channel."""
    if sum(value is not None for value in (priority, tenant, channel)) > 1:
        raise ValueError("pause one priority, one tenant or one channel, not several at once")
    if channel is not None:
        return channel_pause_scope(channel)
    if priority is not None:
        return priority_pause_scope(priority)
    if tenant is not None:
        return tenant_pause_scope(tenant)
    return PAUSE_ALL


def sink_key(namespace: str) -> str:
    """The list the ``sink`` deliverer records deliveries in (``Keys.sink``)."""
    return f"{namespace}:sink"


class Keys:
    """Key names for one namespace with a fixed number of partitions and priority levels."""

    __slots__ = ("_stream_names", "levels", "namespace", "partitions")

    def __init__(
        self, namespace: str, partitions: int, levels: PriorityLevels | None = None
    ) -> None:
        self.namespace = namespace
        self.partitions = partitions
        self.levels = levels or PriorityLevels.parse(DEFAULT_PRIORITIES)
        self._stream_names = tuple(
            {level: f"{{{namespace}:{p}}}:{level}" for level in self.levels.names}
            for p in range(partitions)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        """The keys of the namespace, partitions and priority levels ``settings`` name."""
        return cls(settings.namespace, settings.partitions, settings.priority_levels)

    def partition_of(self, tenant: str, conversation: str) -> int:
        """The partition of a (tenant, conversation): stable across processes and versions."""
        # Control characters are rejected in ids, so NUL cannot occur inside either part.
        digest = zlib.crc32(f"{tenant}\x00{conversation}".encode())
        return digest % self.partitions

    def _tag(self, partition: int) -> str:
        return f"{{{self.namespace}:{partition}}}"

    def stream(self, partition: int, priority: str) -> str:
        """The partition's stream of one priority level (by name)."""
        return self._stream_names[partition][priority]

    def streams(self, partition: int) -> tuple[str, ...]:
        """The partition's streams, highest priority first."""
        return tuple(self._stream_names[partition].values())

    def waiting(self, partition: int, priority: str, tenant: str) -> str:
        """The tenant's list of messages of one level waiting for admission."""
        return f"{self._stream_names[partition][priority]}:w:{tenant}"

    def waiting_prefix(self, partition: int, priority: str) -> str:
        """``waiting(partition, priority, t)`` without the tenant (scripts append it)."""
        return f"{self._stream_names[partition][priority]}:w:"

    def ring(self, partition: int, priority: str) -> str:
        """The tenants with waiting messages of one level, in turn order."""
        return f"{self._stream_names[partition][priority]}:ring"

    def unread(self, partition: int, priority: str) -> str:
        """Entries of the level's stream not yet read by the group."""
        return f"{self._stream_names[partition][priority]}:unread"

    def level_keys(self, partition: int) -> tuple[str, ...]:
        """Per level, highest first: its stream, unread counter and ring (the key layout
        ``admit_and_read.lua`` and ``promote_due.lua`` take)."""
        return tuple(
            key
            for level in self.levels.names
            for key in (
                self.stream(partition, level),
                self.unread(partition, level),
                self.ring(partition, level),
            )
        )

    def dead_letter(self, partition: int) -> str:
        return f"{self._tag(partition)}:dlq"

    def dead_letter_index(self, partition: int) -> str:
        """The partition's dead letters by tenant and by kind (``streams.dead_letter_index``)."""
        return f"{self._tag(partition)}:dlq:index"

    def delayed(self, partition: int) -> str:
        return f"{self._tag(partition)}:delayed"

    def delayed_data(self, partition: int) -> str:
        return f"{self._tag(partition)}:delayed:data"

    def dedup(self, tenant: str, conversation: str, dedup_key: str) -> str:
        """A dedup key's scope is its (tenant, conversation): the key lives in that
        conversation's partition, so a wider scope could not be checked atomically with the
        write, and a narrower one (the partition) let one tenant's key suppress another's."""
        partition = self.partition_of(tenant, conversation)
        scope = f"{len(tenant)}.{len(conversation)}:{tenant}:{conversation}"
        return f"{self._tag(partition)}:dedup:{scope}:{dedup_key}"

    def schedules(self, partition: int) -> str:
        return f"{self._tag(partition)}:schedules"

    def schedule_due(self, partition: int) -> str:
        return f"{self._tag(partition)}:schedules:due"

    @property
    def schedule_index(self) -> str:
        return f"{self.namespace}:schedules"

    def attempts(self, partition: int) -> str:
        return f"{self._tag(partition)}:attempts"

    def counts(self, partition: int) -> str:
        return f"{self._tag(partition)}:counts"

    def outcomes(self, partition: int) -> str:
        return f"{self._tag(partition)}:outcomes"

    def outcome_index(self, partition: int, state: str) -> str:
        """The retention index of the records of one final state (delivered, dead_lettered)."""
        return f"{self._tag(partition)}:outcomes:{state}"

    def outcome_lookup(self, partition: int) -> str:
        """The kept finished records by conversation and by recipient (``ops.message_search``;
        written and trimmed with the records by the scripts that keep them, ``_retain.lua``)."""
        return f"{self.outcomes(partition)}:lookup"

    def outcome_keys(self, partition: int, state: str, now_ms: int) -> tuple[str, ...]:
        """What a script that finishes messages in ``state`` writes (``_outcome.lua``):
        counts, records, the state's records index, events, the current rate bucket, the
        records' lookup index."""
        return (
            self.counts(partition),
            self.outcomes(partition),
            self.outcome_index(partition, state),
            self.events(partition),
            self.rate_bucket(partition, now_ms // RATE_BUCKET_MS),
            self.outcome_lookup(partition),
        )

    def stalls(self, partition: int) -> str:
        return f"{self._tag(partition)}:stalls"

    def lease(self, partition: int) -> str:
        return f"{self._tag(partition)}:lease"

    def _tenant_tag(self, tenant: str) -> str:
        return f"{{{self.namespace}:flow}}:t:{tenant}"

    def tenant_leases(self, tenant: str) -> str:
        return f"{self._tenant_tag(tenant)}:leases"

    def tenant_lease_expiry(self, tenant: str) -> str:
        return f"{self._tenant_tag(tenant)}:lease_expiry"

    def tenant_limits(self, tenant: str) -> str:
        return f"{self._tenant_tag(tenant)}:limits"

    def tenant_pause(self, tenant: str) -> str:
        return f"{self._tenant_tag(tenant)}:pause"

    def tenant_rate(self, tenant: str) -> str:
        return f"{self._tenant_tag(tenant)}:rate"

    def _sender_tag(self, sender: str) -> str:
        return f"{{{self.namespace}:flow}}:s:{sender}"

    def sender_limits(self, sender: str) -> str:
        return f"{self._sender_tag(sender)}:limits"

    def sender_pause(self, sender: str) -> str:
        return f"{self._sender_tag(sender)}:pause"

    def sender_rate(self, sender: str) -> str:
        return f"{self._sender_tag(sender)}:rate"

    def _channel_tag(self, channel: str) -> str:
        return f"{{{self.namespace}:flow}}:c:{channel}"

    def channel_limits(self, channel: str) -> str:
        return f"{self._channel_tag(channel)}:limits"

    def channel_in_flight(self, channel: str) -> str:
        return f"{self._channel_tag(channel)}:in_flight"

    def channel_rate(self, channel: str) -> str:
        return f"{self._channel_tag(channel)}:rate"

    def channel_pause(self, channel: str) -> str:
        return f"{self._channel_tag(channel)}:pause"

    @property
    def limited_channels(self) -> str:
        """The set of channels with limits set at run time (workers read it each tick)."""
        return f"{{{self.namespace}:flow}}:channels"

    @property
    def global_in_flight(self) -> str:
        return f"{{{self.namespace}:flow}}:in_flight"

    @property
    def global_rate(self) -> str:
        return f"{{{self.namespace}:flow}}:rate"

    @property
    def global_limits(self) -> str:
        return f"{{{self.namespace}:flow}}:limits"

    @property
    def paused(self) -> str:
        return f"{self.namespace}:paused"

    @property
    def sink(self) -> str:
        return sink_key(self.namespace)

    @property
    def workers(self) -> str:
        return f"{self.namespace}:workers"

    @property
    def meta(self) -> str:
        return f"{self.namespace}:meta"

    @property
    def repairs(self) -> str:
        """The stream every repair command logs to: who, what, how many."""
        return f"{self.namespace}:repairs"

    @property
    def history(self) -> str:
        """The dashboard's last hour: one point a minute (``ops.dashboard_history``)."""
        return f"{self.namespace}:history"

    @property
    def api_keys(self) -> str:
        """API keys: SHA-256 of the key -> JSON description (never the key itself)."""
        return f"{self.namespace}:api_keys"

    def batch(self, batch_id: str) -> str:
        """One ``send_many`` batch's record (``streams.batch``)."""
        return f"{self.namespace}:batch:{batch_id}"

    def batch_counts_prefix(self, partition: int) -> str:
        """+ a batch id: that batch's delivered / dead-lettered counts in the partition."""
        return f"{self._tag(partition)}:batch:"

    def batch_counts(self, partition: int, batch_id: str) -> str:
        return self.batch_counts_prefix(partition) + batch_id

    def rate_bucket(self, partition: int, bucket: int) -> str:
        """Messages finished in one 10-second bucket (``ms // RATE_BUCKET_MS``), by counter
        field (``streams.outcome.counter_field``); each expires after 80 s."""
        return f"{self._tag(partition)}:rate:{bucket}"

    def events(self, partition: int) -> str:
        """The partition's outcome events (``Producer.events()`` reads every partition's)."""
        return f"{self._tag(partition)}:events"

    def partition_of_key(self, key: str) -> int:
        """The partition a per-partition key belongs to (inverse of the builders above)."""
        tag = key[1 : key.index("}")]
        return int(tag.rsplit(":", 1)[1])

    def priority_of_stream(self, stream: str) -> str:
        """The priority level (name) of one of the partitions' streams."""
        return stream.rsplit(":", 1)[1]
