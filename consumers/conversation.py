"""One conversation's entries in memory, in stream order (one priority of one conversation)."""

from __future__ import annotations

from collections import deque

from relayq.consumers.envelope import Envelope, PartitionState

__all__ = ("Conversation", "ConversationKey")

ConversationKey = tuple[str, str, str]
"""(priority, tenant, conversation)"""


class Conversation:
    __slots__ = ("entries", "key", "priority", "state", "tenant", "woken")

    def __init__(self, key: ConversationKey, priority: str, state: PartitionState) -> None:
        self.key = key
        self.priority = priority
        self.tenant = key[1]
        self.state = state
        self.entries: deque[Envelope] = deque()
        self.woken = False
        """Set when woken from its tenant's parked queue: it may ask for admission again."""
