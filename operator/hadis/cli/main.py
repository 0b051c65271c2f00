"""``hadis``: the command line. User errors print one clear message and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hadis import __version__
from hadis.cli import allocate_cmd, bench_cmd, load_cmd, profile_cmd, simulate_cmd, table_cmd, up_cmd
from hadis.cli.train_cmd import add_parser as add_train_parser
from hadis.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hadis",
        description="HADIS: hybrid adaptive diffusion model serving — planning, allocation, simulation.",
    )
    parser.add_argument("--version", action="version", version=f"hadis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    table_cmd.add_parser(sub)
    allocate_cmd.add_parser(sub)
    simulate_cmd.add_parser(sub)
    load_cmd.add_parser(sub)
    up_cmd.add_parser(sub)
    bench_cmd.add_parser(sub)
    add_train_parser(sub)
    profile_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except UserError as e:
        print(f"hadis {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hadis table | head`: the reader left, nothing more to say
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
