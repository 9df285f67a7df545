"""The ``cvsuite`` command: one subcommand per app plus ``demo`` and ``doctor``.

Each app's ``apps/<app>/cli.py`` defines ``register(subparsers)`` and ``demo(out_dir)``. Errors
caused by the user print one ``cvsuite: error: ...`` line (exit 2 for usage, 1 for runtime);
``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from . import compat  # noqa: F401  (before any app imports basicsr/open3d)
from .errors import CvsuiteError, UsageError

APP_NAMES = ("sr", "mot", "points", "hand", "scrl", "pretrain")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (via UsageError) instead of usage + exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def discover_apps() -> tuple[dict[str, Any], dict[str, str]]:
    """Import every ``apps.<name>.cli``; return (modules, reasons the others are unavailable)."""
    modules: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name in APP_NAMES:
        try:
            modules[name] = importlib.import_module(f"apps.{name}.cli")
        except ModuleNotFoundError as exc:
            if exc.name in (f"apps.{name}", f"apps.{name}.cli", "apps"):
                problems[name] = "not built yet"
            else:
                problems[name] = f"missing dependency {exc.name!r} ({exc})"
        except Exception as exc:  # an app that fails to import must not take the others down
            problems[name] = f"import failed: {type(exc).__name__}: {exc}"
    return modules, problems


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Any], dict[str, str]]:
    parser = OneLineParser(prog="cvsuite", description="Contrastive-learning applications for vision.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules, problems = discover_apps()
    for name, module in modules.items():
        module.register(sub)
    demo = sub.add_parser("demo", help="run every app's demo on bundled data with shipped weights")
    demo.add_argument("--out", default="cvsuite-demo", help="output folder (default: ./cvsuite-demo)")
    demo.add_argument("--apps", nargs="*", choices=sorted(modules), help="only these apps")
    demo.set_defaults(func=lambda args: run_demo(Path(args.out), modules, args.apps))
    doctor = sub.add_parser("doctor", help="report versions, threads, CUDA and which apps are usable")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=lambda args: run_doctor(modules, problems, args.json))
    return parser, modules, problems


def _version(module_name: str) -> str:
    try:
        from importlib.metadata import version

        return version(module_name)
    except Exception:
        return "not installed"


def run_doctor(modules: dict[str, Any], problems: dict[str, str], as_json: bool) -> int:
    import torch

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in (
            "torchvision", "numpy", "scipy", "safetensors", "basicsr", "motmetrics", "trackeval", "lap",
            "opencv-python", "scikit-image", "scikit-learn", "open3d-cpu", "open3d", "pycocotools", "lightly",
            "pb1-detectron2")},
        "apps": {**{name: "usable" for name in modules}, **problems},
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"python {report['python']} on {report['platform']}")
    print(f"torch {report['torch']}  CUDA: {'yes ' + str(report['cuda_devices']) if report['cuda'] else 'no'}  "
          f"threads: {report['threads']} (cpus: {report['cpu_count']})")
    for name, ver in report["packages"].items():
        print(f"  {name:<14} {ver}")
    print("apps:")
    for name in APP_NAMES:
        print(f"  {name:<9} {report['apps'][name]}")
    return 0


def run_demo(out_dir: Path, modules: dict[str, Any], only: list[str] | None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name in APP_NAMES:
        if name not in modules or (only and name not in only) or not hasattr(modules[name], "demo"):
            continue
        started = time.perf_counter()
        print(f"== {name} demo ==", flush=True)
        try:
            result = modules[name].demo(out_dir / name)
        except CvsuiteError as exc:
            failures += 1
            print(f"cvsuite: error: {name} demo: {exc}", file=sys.stderr)
            continue
        for key, value in (result or {}).items():
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
        print(f"  ({time.perf_counter() - started:.1f} s, outputs in {out_dir / name})", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser, _, _ = build_parser()
        args = parser.parse_args(argv)
        func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
        if func is None:
            parser.print_help()
            return 0 if not argv else 2
        return int(func(args) or 0)
    except CvsuiteError as exc:
        if debug:
            traceback.print_exc()
        print(f"cvsuite: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cvsuite: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: still one line unless --debug
        if debug:
            traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"cvsuite: error: {type(exc).__name__}: {message} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
