"""The keyword arguments of ``send``, ``send_or_deliver`` and ``schedule``, as TypedDicts.

The producers type their ``**fields`` with ``Unpack[SendFields]`` (PEP 692), so mypy and
pyright reject a misspelt or mistyped field at the call site; ``send()`` still checks every
value at run time. ``SendFields`` mirrors the ``SendRequest`` dataclass field for field
(a test keeps the two in step). ``Unpack`` is only needed by type checkers: it is
imported under ``TYPE_CHECKING``, so typing_extensions is no run-time dependency.

No ``from __future__ import annotations`` here: TypedDict reads ``NotRequired`` from the
evaluated annotations (``__required_keys__`` would be wrong with string annotations).
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from relayq.streams.message import Priority

__all__ = ("ScheduleFields", "SendFields")


class ScheduleFields(TypedDict):
    """The fields of a repeatable message (``schedule``): those of ``send`` without
    ``dedup_key``, ``delay`` and ``not_before``."""

    tenant: str
    conversation: str
    recipient: str
    payload: Any
    priority: NotRequired[Priority | str | int | None]
    metadata: NotRequired[Mapping[str, str] | None]
    sender: NotRequired[str | None]
    max_attempts: NotRequired[int | None]
    channel: NotRequired[str | None]


class SendFields(ScheduleFields):
    """The keyword arguments of ``send`` and ``send_or_deliver``: the fields of
    ``SendRequest``, ``tenant``, ``conversation``, ``recipient`` and ``payload`` required.

    Spell a call's fields out as a ``SendFields`` to have a type checker check them::

        fields: SendFields = {"tenant": "acme", "conversation": "c-1",
                              "recipient": "+15550100", "payload": {"text": "hi"}}
        await producer.send(**fields)

    .. versionadded:: 0.1.0
    """

    dedup_key: NotRequired[str | None]
    delay: NotRequired[float | None]
    not_before: NotRequired[dt.datetime | float | None]
