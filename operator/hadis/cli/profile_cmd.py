"""``hadis profile``: measure a profile on this machine (``latency``, ``quality``, or ``all`` of it
in one go) and export one.

Measuring needs torch and diffusers, which the control plane never imports: ``hadis profile
latency`` checks its options here (the same definitions as the worker module's), then runs
``python -m hadis_worker.profiling.latency`` with this interpreter, streams its output and returns
its exit status. ``all`` checks its options here too (:mod:`hadis.profiling.all_options`) and passes
its arguments as given to ``python -m hadis_worker.profiling.profile_all``. ``quality`` passes every
argument to ``python -m hadis_worker.profiling.quality`` (its options are defined there only).
``export`` is pure and runs here.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hadis.cli.common import progress
from hadis.errors import UserError
from hadis.profiles import DEFAULT_PROFILE, load_profile
from hadis.profiling import all_options, latency_options
from hadis.profiling.export import build_profile_config_map, manifest_yaml

#: What a measuring subcommand needs importable, and the install hint when it is not.
WORKER_MODULES = ("hadis_worker", "torch", "diffusers", "transformers")
INSTALL_HINT = "pip install 'hadis[worker,diffusers]'"
#: Measuring subcommands whose options the worker module defines (everything after the name is
#: passed on): name → (module, help).
PASS_THROUGH = {
    "quality": (
        "hadis_worker.profiling.quality",
        "the cascade sweep: seeded images per prompt and variant, discriminator and router scores, "
        "the θ × τ sweep with FID, the Pareto table",
    ),
}
ALL_MODULE = "hadis_worker.profiling.profile_all"
ALL_HELP = (
    "latencies, quality sweep and Pareto table into one directory, checked by the planner "
    "(--tiny: tiny random-weight pipelines on the CPU)"
)
#: How long an interrupted ``hadis profile`` waits for its measuring child to save and exit.
GRACE_S = 15.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("profile", help="measure a profile on this machine, or export one as a ConfigMap")
    what = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    lat = what.add_parser(
        "latency",
        help="batch latencies, memory, load and swap time of variants on the local device",
        description="Measure each variant's latency per batch size (p50/p90 of --repeats after --warmup), "
        "peak memory, the largest batch that fits, load and host-to-GPU swap time, and write the profile "
        "JSON that hadis table/allocate/simulate and a HadisService read. Runs "
        "python -m hadis_worker.profiling.latency (needs the worker and diffusers extras).",
    )
    latency_options.add_latency_arguments(lat)
    lat.set_defaults(run=run_latency)
    for name, (module, help_) in PASS_THROUGH.items():
        q = what.add_parser(
            name,
            help=help_,
            description=f"{help_}. Runs python -m {module}; every argument goes to it "
            f"(hadis profile {name} --help lists them).",
            add_help=False,
            prefix_chars="\x00",  # no option of its own: "--help" and the rest are the module's
        )
        q.add_argument("args", nargs="*", metavar="ARG", help=f"arguments of python -m {module}")
        q.set_defaults(run=functools.partial(run_pass_through, module))
    a = what.add_parser(
        "all",
        help=ALL_HELP,
        description=f"{ALL_HELP}. Runs python -m {ALL_MODULE} (hadis profile all --help lists the options).",
        add_help=False,
        prefix_chars="\x00",  # its options are all_options' (parsed in run_all, --help included)
    )
    a.add_argument("args", nargs="*", metavar="ARG", help="see hadis profile all --help")
    a.set_defaults(run=run_all)
    exp = what.add_parser(
        "export",
        help="a profile as a ConfigMap manifest (YAML) for a HadisService's spec.profile.configMap",
    )
    exp.add_argument(
        "profile", help=f"a profile JSON file or a built-in profile name (e.g. {DEFAULT_PROFILE})"
    )
    exp.add_argument("--name", required=True, help="the ConfigMap's name")
    exp.add_argument("--namespace", default=None, help="the ConfigMap's namespace (default: none set)")
    exp.add_argument("--key", default="profile.json", help="the data key holding the profile (profile.json)")
    exp.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    exp.set_defaults(run=run_export)


def missing_modules(names: tuple[str, ...] = WORKER_MODULES) -> list[str]:
    return [n for n in names if importlib.util.find_spec(n) is None]


def run_module(module: str, argv: list[str], *, check: Callable[[], list[str]] = missing_modules) -> int:
    """Run ``python -m module argv`` with this interpreter; its output streams through, its status returns."""
    missing = check()
    if missing:
        raise UserError(f"needs {', '.join(missing)} (not installed here): {INSTALL_HINT}")
    proc = subprocess.Popen([sys.executable, "-m", module, *argv])
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached the child too: let it save and exit; forward it only when
        # this process alone was interrupted (the child is still running after a grace period).
        try:
            code = proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise KeyboardInterrupt from None
    return 128 - code if code < 0 else code  # killed by signal N: the shell's 128 + N


def run_pass_through(module: str, args: argparse.Namespace) -> int:
    return run_module(module, list(args.args))


def run_latency(args: argparse.Namespace) -> int:
    return run_module("hadis_worker.profiling.latency", latency_options.to_argv(args))


def all_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hadis profile all",
        description=f"{ALL_HELP}: hadis profile latency, then hadis profile quality merging into its "
        "profile, then the checks (every variant and batch size measured, every (pair, θ, τ) cell swept, "
        "the table Pareto, a feasible allocation). Resumable (--resume).",
    )
    all_options.add_all_arguments(p)
    return p


def run_all(args: argparse.Namespace) -> int:
    """Check the options here (``--help`` too), then run the worker module with them as given."""
    try:
        all_options.resolve(all_parser().parse_args(args.args))
    except all_options.OptionError as e:
        raise UserError(str(e)) from None
    return run_module(ALL_MODULE, list(args.args))


def run_export(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    try:
        manifest = build_profile_config_map(profile, name=args.name, namespace=args.namespace, key=args.key)
    except ValueError as e:
        raise UserError(str(e)) from None
    text = manifest_yaml(manifest)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    except OSError as e:
        raise UserError(f"-o {args.output}: {e.strerror}") from None
    ref = f"configMap: {{name: {args.name}, key: {args.key}}}"
    progress(f"wrote {args.output}: ConfigMap {args.name} (profile {profile.name!r}); reference it as {ref}")
    return 0
