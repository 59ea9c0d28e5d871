"""``pcseg <command> ...``: dispatch to the subcommand modules.

Each subcommand lives in ``pcseg/cli/<name>.py`` and defines ``HELP`` (one line), ``DESCRIPTION``
(the ``--help`` text), ``add_arguments(parser)`` and ``run(args) -> int``. Those modules import
nothing heavy at module level, so ``pcseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pcseg.utils.errors import PcsegError

# Order = order in `pcseg --help`.
SUBCOMMANDS = ("prepare", "labels", "train", "eval", "al", "viz", "lift")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcseg",
        description="3D semantic segmentation with little or no manual labelling "
        "(CPCM weak supervision, HPAL active learning, 3D-OVS in nerfstudio).",
        epilog="Run `pcseg <command> --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"pcseg {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"pcseg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pcseg.cli.{name}":
                continue  # subcommand not part of this build
            raise
        p = sub.add_parser(
            name,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _version() -> str:
    from pcseg import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except PcsegError as exc:
        print(f"pcseg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pcseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
