"""``relayq env``: the settings in force, where each came from, and what looks wrong.

Every variable of ``ENVIRONMENT`` is listed with its value and its source
(``environment`` or ``default``). A value relayq cannot use is an error naming the
variable and what it expects (exit 2); a ``RELAYQ_*`` variable relayq does not know (a
typo such as ``RELAYQ_PARTITONS``) is a warning naming the closest known one.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Mapping

import redis

from relayq.streams.errors import ConfigurationError
from relayq.streams.redis_client import redis_address
from relayq.streams.settings import ENVIRONMENT, SECRET_FIELDS, Settings

__all__ = ("run_env", "unknown_variables")

_SCRIPT_VARIABLES = ("RELAYQ_EXTRAS", "RELAYQ_VENV")
"""Read by ./scripts/* (which extras to install, where the venv is), not by relayq."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each ``RELAYQ_*`` variable relayq does not read."""
    known = [*ENVIRONMENT, *_SCRIPT_VARIABLES]
    suffixes = {name.removeprefix("RELAYQ_"): name for name in known}
    warnings = []
    for variable in sorted(environ):
        if not variable.startswith("RELAYQ_") or variable in known:
            continue
        close = difflib.get_close_matches(variable.removeprefix("RELAYQ_"), suffixes, n=1)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else "; `relayq env` lists them"
        warnings.append(f"{variable} is not a relayq setting and is ignored{hint}")
    return warnings


def _redis_shown(settings: Settings) -> str:
    """REDIS_URL without credentials, or what its absence means; ConfigurationError if it
    is not a Redis URL."""
    if not settings.redis_url:
        return f"unset: embedded redis-server in {settings.data_path}"
    try:
        return redis_address(redis.Redis.from_url(settings.redis_url))
    except ValueError as exc:  # the value is not repeated: it may hold a password
        raise ConfigurationError(f"REDIS_URL is not a Redis URL: {exc}") from None


def run_env(environ: Mapping[str, str] | None = None, *, as_json: bool = False) -> int:
    """Print every setting in force; raises ConfigurationError on a value it cannot use."""
    env = os.environ if environ is None else environ
    for warning in unknown_variables(env):
        print(f"relayq: warning: {warning}", file=sys.stderr)
    settings = Settings.from_env(env)
    rows = []
    for variable, (field, _parse, doc) in ENVIRONMENT.items():
        source = "environment" if env.get(variable) else "default"
        value = _redis_shown(settings) if field == "redis_url" else getattr(settings, field)
        if field in SECRET_FIELDS and value is not None:
            value = "(set, not shown)"
        rows.append({"variable": variable, "value": value, "source": source, "meaning": doc})
    if as_json:
        print(json.dumps(rows))
        return 0
    for row in rows:
        value = "unset" if row["value"] is None else row["value"]
        print(f"{row['variable']:37} {value}  ({row['source']}; {row['meaning']})")
    return 0
