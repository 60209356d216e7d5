"""Dead letters by tenant and by error kind: a lexicographic index per partition, so a
filtered page of dead letters is read in Redis (``ZRANGE ... BYLEX LIMIT``) instead of by
scanning the dead-letter stream.

``{ns:P}:dlq:index`` (``Keys.dead_letter_index``) is a sorted set whose scores are all 0.
Each dead letter has a member ``k NUL <kind> NUL <entry id, padded>`` and, when it holds a
message, ``t NUL <tenant> NUL <entry id, padded>`` (a poison entry has no tenant). The id is
padded (milliseconds to 15 digits, sequence to 10) so that lexicographic order is the
stream's order: a group's members (one tenant's, one kind's) sort oldest first, like the
stream. Names hold no control character, so NUL cannot occur inside one, and one name's
members sort apart from any other's.

Written by ``dead_letter_11.lua`` in the step that writes the dead letter; removed by the
replay script, by deletes (``ops.dead_letter_repair``) and by trims
(``trim_dead_letters_2.lua``). A member whose entry is gone anyway (a delete racing a read)
is skipped and removed by the reader that finds it.

An index is known complete when it holds the member ``COMPLETE`` (it starts with NUL: no
group does). A partition whose index lacks it (dead letters written before the index
existed, or the index deleted) is indexed from its stream by ``ops.dead_letters_by_index``
before a filtered page is read.
"""

from __future__ import annotations

__all__ = (
    "COMPLETE",
    "KIND",
    "TENANT",
    "dlq_id_of",
    "index_member",
    "letter_members",
    "member_bounds",
)

COMPLETE = "\x00complete"
TENANT = "t"
"""The group of a tenant's dead letters."""
KIND = "k"
"""The group of an error kind's dead letters."""
_SEPARATOR = "\x00"
_MS_WIDTH = 15
_SEQ_WIDTH = 10


def _padded(dlq_id: str) -> str:
    ms, _, seq = dlq_id.partition("-")
    return f"{ms.zfill(_MS_WIDTH)}-{(seq or '0').zfill(_SEQ_WIDTH)}"


def index_member(group: str, name: str, dlq_id: str) -> str:
    """The member of the dead letter ``dlq_id`` in ``group`` (``TENANT``, ``KIND``) under
    ``name`` (``_dead_letter_index.lua``'s ``dead_letter_member`` builds the same)."""
    return f"{group}{_SEPARATOR}{name}{_SEPARATOR}{_padded(dlq_id)}"


def letter_members(tenant: str | None, kind: str, dlq_id: str) -> list[str]:
    """Every member of one dead letter: its kind's, and its tenant's when it has one."""
    members = [index_member(KIND, kind, dlq_id)]
    if tenant is not None:
        members.append(index_member(TENANT, tenant, dlq_id))
    return members


def dlq_id_of(member: bytes | str) -> str:
    """The entry id a member names (padding removed)."""
    text = member.decode() if isinstance(member, bytes) else member
    padded = text.rpartition(_SEPARATOR)[2]
    ms, _, seq = padded.partition("-")
    return f"{int(ms)}-{int(seq)}"


def member_bounds(group: str, name: str, low: str | None, high: str | None) -> tuple[str, str]:
    """``ZRANGE BYLEX`` bounds of ``name``'s members in ``group`` with ids from ``low``
    (inclusive, an entry id; None: the first) up to ``high`` (inclusive; an entry id, or a
    bare ms meaning any sequence of it; None: the last). A ``low`` starting with ``(`` is
    exclusive."""
    prefix = f"{group}{_SEPARATOR}{name}{_SEPARATOR}"
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
