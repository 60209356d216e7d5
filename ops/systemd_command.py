"""``relayq systemd install [--prefix /] [--user relayq] [--bin PATH] [--dry-run]``: put the
systemd units shipped in ``ops/systemd/`` in place.

Writes ``etc/systemd/system/relayq-worker@.service`` and ``relayq-api.service`` (their
``ExecStart=`` naming this relayq executable, ``User=``/``Group=`` the chosen user),
``etc/sysusers.d/relayq.conf`` (that user, for systemd-sysusers) and, only if it is not
there yet, ``etc/relayq/relayq.env`` from the example: an operator's settings are never
overwritten. Then prints the commands that start the services. Writing under ``/`` needs
root; ``--prefix DIR`` writes under DIR instead (a package build, a test) and
``--dry-run`` prints what would be written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from relayq.ops.cli_errors import CommandError

__all__ = ("UNITS", "Installation", "add_systemd_command", "find_relayq", "render_unit")

UNITS = ("relayq-worker@.service", "relayq-api.service")
_SHIPPED_BIN = "/usr/local/bin/relayq"
"""The path the shipped units name; install replaces it with the real one."""
_SHIPPED_USER = "relayq"
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_ENV_FILE = "etc/relayq/relayq.env"
_SYSUSERS_FILE = "etc/sysusers.d/relayq.conf"
_UNIT_FOLDER = "etc/systemd/system"


def _shipped(name: str) -> str:
    return files("relayq.ops").joinpath("systemd", name).read_text(encoding="utf-8")


def _exec_word(path: str) -> str:
    """``path`` as the first word of ``ExecStart=`` (``%`` escaped, quoted if needed)."""
    word = path.replace("%", "%%")
    if re.search(r"[\s\"'\\]", word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(text: str, binary: str, user: str) -> str:
    """A shipped unit with ``binary`` in ``ExecStart=`` and ``user`` as User=/Group=."""
    text = text.replace(f"ExecStart={_SHIPPED_BIN} ", f"ExecStart={_exec_word(binary)} ")
    return re.sub(rf"^(User|Group)={_SHIPPED_USER}$", lambda m: f"{m[1]}={user}", text, flags=re.M)


def find_relayq(explicit: str | None = None) -> str:
    """The absolute path of the relayq executable: ``explicit``, else the one running this
    command, else the first on $PATH."""
    if explicit:
        path = os.path.abspath(explicit)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ValueError(f"--bin {explicit!r} is not an executable file")
        return path
    running = sys.argv[0]
    if Path(running).name == "relayq" and os.access(running, os.X_OK):
        return os.path.abspath(running)
    found = shutil.which("relayq")
    if found is None:
        raise CommandError("no relayq executable found on $PATH: name it with --bin PATH")
    return os.path.abspath(found)


@dataclasses.dataclass(frozen=True, slots=True)
class Installation:
    """What ``install`` writes, and where."""

    prefix: Path
    binary: str
    user: str

    def files(self) -> list[tuple[Path, str]]:
        """(path, text) of the files install always writes (units, the sysusers entry)."""
        folder = self.prefix / _UNIT_FOLDER
        written = [
            (folder / name, render_unit(_shipped(name), self.binary, self.user)) for name in UNITS
        ]
        sysusers = _shipped("relayq.sysusers").replace("u relayq ", f"u {self.user} ")
        written.append((self.prefix / _SYSUSERS_FILE, sysusers))
        return written

    @property
    def env_file(self) -> Path:
        return self.prefix / _ENV_FILE


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` whole or not at all (a half-written unit never shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.chmod(mode)
    partial.replace(path)


def _install(plan: Installation) -> None:
    for path, text in plan.files():
        _write(path, text, 0o644)
        print(f"wrote {path}")
    if plan.env_file.exists():
        print(f"kept {plan.env_file} (exists: never overwritten)")
    else:
        # Mode 0600: it may hold provider tokens; systemd reads it as root.
        _write(plan.env_file, _shipped("relayq.env.example"), 0o600)
        print(f"wrote {plan.env_file} (the example: set REDIS_URL and the deliverer)")


def _dry_run(plan: Installation) -> None:
    for path, text in plan.files():
        print(f"# would write {path}:\n{text}")
    verb = "would keep" if plan.env_file.exists() else "would write"
    print(f"# {verb} {plan.env_file}")


def _next_steps(plan: Installation) -> None:
    print(f"ExecStart: {plan.binary}; User: {plan.user}")
    if plan.prefix != Path("/"):
        print(f"(under {plan.prefix}: put these files under / on the target machine)")
    print(
        "next, as root:\n"
        "  systemd-sysusers                 # creates the user\n"
        f"  $EDITOR /{_ENV_FILE}     # REDIS_URL, RELAYQ_DELIVERER...\n"
        "  systemctl daemon-reload\n"
        "  systemctl enable --now relayq-worker@1 relayq-worker@2\n"
        "  systemctl enable --now relayq-api"
    )


def _plan(args: argparse.Namespace) -> Installation:
    if not _USER_NAME.fullmatch(args.user):
        raise ValueError(f"--user {args.user!r} is not a user name (a-z, 0-9, _ and -)")
    prefix = Path(args.prefix).absolute()
    if prefix == Path("/") and not args.dry_run and os.geteuid() != 0:
        raise CommandError(
            "writing to /etc/systemd/system needs root: run it with sudo, or see what it "
            "would write with --dry-run (or write under --prefix DIR)"
        )
    return Installation(prefix=prefix, binary=find_relayq(args.bin), user=args.user)


def _cmd_install(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if args.dry_run:
        _dry_run(plan)
    else:
        _install(plan)
    _next_steps(plan)
    return 0


def add_systemd_command(sub: Any) -> None:
    """Add ``relayq systemd install`` to the ``relayq`` parser's subcommands ``sub``."""
    systemd = sub.add_parser("systemd", help="install the systemd units (worker, API)")
    actions = systemd.add_subparsers(dest="action", required=True)
    install = actions.add_parser(
        "install",
        help="write relayq-worker@.service, relayq-api.service, the relayq user's sysusers "
        "entry and /etc/relayq/relayq.env (if absent)",
    )
    install.add_argument("--prefix", default="/", help="write under this folder (default /)")
    install.add_argument(
        "--user", default=_SHIPPED_USER, help="user the services run as (default relayq)"
    )
    install.add_argument("--bin", help="the relayq executable (default: this one)")
    install.add_argument(
        "--dry-run", action="store_true", help="print what would be written; write nothing"
    )
    install.set_defaults(handler=_cmd_install)
