"""The dashboard's pages: the Jinja templates in ``dashboard/templates/`` (autoescaped:
every value a message carries is shown as text, never as markup) and the static files in
``dashboard/static/`` (a style sheet and a 20-line script that refreshes a page's live
part; every page reads fine without it). ``dashboard/`` holds data only (package data of
``relayq.ops``), no module.

Routes are in ``ops.dashboard_routes``; sessions and CSRF in ``ops.dashboard_session``;
the inline SVG charts in ``ops.dashboard_charts``; what pages show in ``ops.dashboard_views``.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import jinja2

__all__ = ("STATIC_DIR", "render")

_HERE = Path(__file__).parent / "dashboard"
STATIC_DIR = _HERE / "static"


def _when(ms: int | None) -> str:
    """Unix ms as UTC ``YYYY-MM-DD HH:MM:SS``; "" for none."""
    if not ms:
        return ""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _age(ms: int | None, now_ms: int) -> str:
    """How long ago ``ms`` was, for a person: ``42s``, ``3m 5s``, ``2h 1m``."""
    if not ms:
        return ""
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["when"] = _when
_environment.globals["age"] = _age


def render(template: str, **context: Any) -> str:
    """``templates/<template>`` rendered with ``context`` (autoescape on)."""
    return _environment.get_template(template).render(**context)
