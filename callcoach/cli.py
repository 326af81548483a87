"""The ``callcoach`` command. Each subcommand lives beside the code it drives and registers itself
here through a ``register(subparsers)`` function that sets ``func(args, settings) -> int``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from callcoach.config import ConfigError, load_settings

# module path -> the subcommands it registers; imported lazily so `callcoach --help` stays fast
COMMAND_MODULES = (
    "callcoach.serve",
    "callcoach.pipeline.cli",
    "callcoach.llm.cli",
    "callcoach.report.cli",
    "callcoach.workflow.cli",
    "callcoach.workflow.worker",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcoach", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a part not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"callcoach: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"callcoach: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
