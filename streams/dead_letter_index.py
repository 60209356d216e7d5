"""Dead letters by tenant: a lexicographic index per partition, so a tenant's dead letters
are paged in Redis (``ZRANGE ... BYLEX LIMIT``) instead of scanning the dead-letter stream.

``{ns:P}:dlq:by-tenant`` (``Keys.dead_letter_tenants``) is a sorted set whose scores are all
0; each member is ``<tenant> NUL <entry id, padded>`` of one dead letter that holds a
message (a poison entry has no tenant: it is not indexed). The id is padded (milliseconds to
15 digits, sequence to 10) so that lexicographic order is the stream's order: a tenant's
members sort oldest first, like the stream. Tenants hold no control character, so NUL
cannot occur inside one, and a tenant's members sort before any other tenant's.

Written by ``dead_letter_11.lua`` in the step that writes the dead letter; removed by the
replay script, by deletes (``ops.dead_letter_repair``) and by trims
(``trim_dead_letters_2.lua``). A member whose entry is gone anyway (a delete racing a read)
is skipped and removed by the reader that finds it.

An index is known complete when it holds the member ``COMPLETE`` (NUL + "complete": no
tenant is empty, so no dead letter's member can equal it). A partition whose index lacks it
(dead letters written before the index existed, or the index deleted) is indexed from its
stream by ``ops.dead_letter_inspection`` before a tenant's page is read.
"""

from __future__ import annotations

__all__ = (
    "COMPLETE",
    "dlq_id_of",
    "index_member",
    "member_bounds",
)

COMPLETE = "\x00complete"
_SEPARATOR = "\x00"
_MS_WIDTH = 15
_SEQ_WIDTH = 10


def _padded(dlq_id: str) -> str:
    ms, _, seq = dlq_id.partition("-")
    return f"{ms.zfill(_MS_WIDTH)}-{(seq or '0').zfill(_SEQ_WIDTH)}"


def index_member(tenant: str, dlq_id: str) -> str:
    """The member of the dead letter ``dlq_id`` of ``tenant`` (``_dead_letter_index.lua``'s
    ``dead_letter_member`` builds the same)."""
    return f"{tenant}{_SEPARATOR}{_padded(dlq_id)}"


def dlq_id_of(member: bytes | str) -> str:
    """The entry id a member names (padding removed)."""
    text = member.decode() if isinstance(member, bytes) else member
    padded = text.rpartition(_SEPARATOR)[2]
    ms, _, seq = padded.partition("-")
    return f"{int(ms)}-{int(seq)}"


def member_bounds(tenant: str, low: str | None, high: str | None) -> tuple[str, str]:
    """``ZRANGE BYLEX`` bounds of ``tenant``'s members with ids from ``low`` (inclusive, an
    entry id; None: the first) up to ``high`` (inclusive; an entry id, or a bare ms meaning
    any sequence of it; None: the last). A ``low`` starting with ``(`` is exclusive."""
    prefix = f"{tenant}{_SEPARATOR}"
    if low is None:
        start = f"[{prefix}"
    elif low.startswith("("):
        start = f"({prefix}{_padded(low[1:])}"
    else:
        start = f"[{prefix}{_padded(low)}"
    if high is None:
        end = f"[{prefix}\xff"
    elif "-" in high:
        end = f"[{prefix}{_padded(high)}"
    else:
        end = f"({prefix}{str(int(high) + 1).zfill(_MS_WIDTH)}-"
    return start, end
