"""The ``cvsuite`` command: one subcommand per app plus ``demo`` and ``doctor``.

Each app's ``apps/<app>/cli.py`` defines ``register(subparsers)`` and ``demo(out_dir)``. Errors
caused by the user print one ``cvsuite: error: ...`` line (exit 2 for usage, 1 for runtime);
``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

# OpenCV and its FFmpeg backend print warnings and errors straight to the terminal; cvsuite checks
# every result and reports a problem as one line itself (``--debug`` keeps OpenCV's own messages).
if "--debug" not in sys.argv:
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

from . import compat  # noqa: F401,E402  (before any app imports basicsr/open3d)
from .errors import CvsuiteError, UsageError, one_line  # noqa: E402

APP_NAMES = ("sr", "mot", "points", "hand", "scrl", "pretrain")


PROGRAM = "cvsuite"

# A config override token: ``section.key=value`` (dotted identifier, then ``=``).
_OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=")


def is_override_token(token: str) -> bool:
    """True for a ``key=value`` config override (``train.max_steps=5``), never for an ``--option``."""
    return bool(_OVERRIDE.match(token))


def _values_taken(action: argparse.Action) -> int | None:
    """How many following tokens an option consumes: a fixed count, or None when variable (``+``, ``*``, ``?``)."""
    if action.nargs is None:
        return 1 if isinstance(action, (argparse._StoreAction, argparse._AppendAction)) else 0
    if isinstance(action.nargs, int):
        return action.nargs
    if action.nargs == argparse.SUPPRESS or action.nargs == argparse.PARSER:
        return 0
    return None


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (via UsageError) instead of usage + exit.

    A verb with a positional ``overrides`` argument (``shared.cli_utils.add_config_args``) takes its
    ``key=value`` tokens from ANYWHERE on its command line, also right after an option that takes
    several values (``--hr A B train.out_dir=X``); they are pulled out before argparse sees them.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        # The CLI prints "cvsuite: error: ..." itself; name the verb only below the top level.
        where = self.prog[len(PROGRAM):].strip() if self.prog.startswith(PROGRAM) else self.prog
        raise UsageError(f"{where}: {message} (see --help)" if where else f"{message} (see --help)")

    def _split_overrides(self, args: list[str]) -> tuple[list[str], list[str]]:
        """(other tokens, override tokens); a token that is the value of a one-value option stays put."""
        takes = {opt: _values_taken(a) for a in self._actions for opt in a.option_strings}
        rest: list[str] = []
        overrides: list[str] = []
        skip = 0
        for index, token in enumerate(args):
            if token == "--":
                rest += args[index:]
                break
            if skip:
                skip -= 1
                rest.append(token)
                continue
            if token.startswith("-") and "=" not in token:
                option = token
                if option not in takes and option.startswith("--"):  # argparse accepts unique prefixes
                    matches = [o for o in takes if o.startswith(option)]
                    option = matches[0] if len(matches) == 1 else option
                skip = takes.get(option) or 0
                rest.append(token)
            elif is_override_token(token):
                overrides.append(token)
            else:
                rest.append(token)
        return rest, overrides

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if args is None or not any(a.dest == "overrides" and not a.option_strings for a in self._actions):
            return super().parse_known_args(args, namespace)
        rest, pulled = self._split_overrides(list(args))
        namespace, extras = super().parse_known_args(rest, namespace)
        namespace.overrides = pulled + list(getattr(namespace, "overrides", None) or [])
        return namespace, extras


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
    parser = OneLineParser(prog=PROGRAM, description="Contrastive-learning applications for vision.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules, problems = discover_apps()
    for name, module in modules.items():
        module.register(sub)
    demo = sub.add_parser("demo", help="run every app's demo on bundled data with shipped weights")
    demo.add_argument("--out", default="cvsuite-demo", help="output folder (default: ./cvsuite-demo)")
    demo.add_argument("--apps", nargs="*", choices=sorted(modules), help="only these apps")
    demo.add_argument("--force", action="store_true",
                      help="overwrite existing files in --out that cvsuite did not write (never an input)")
    demo.set_defaults(func=lambda args: run_demo(Path(args.out), modules, args.apps, args.force))
    doctor = sub.add_parser("doctor", help="report versions, threads, CUDA and which apps are usable")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=lambda args: run_doctor(modules, problems, args.json))
    return parser, modules, problems


# What doctor reports: import name -> what the suite uses it for. Versions are read from the
# distribution that provides the import (``open3d`` comes from ``open3d-cpu``, ``cv2`` from
# ``opencv-contrib-python-headless``), so the report names what is really importable.
DOCTOR_MODULES = ("torchvision", "numpy", "scipy", "safetensors", "basicsr", "motmetrics", "trackeval", "lap",
                  "cv2", "imageio_ffmpeg", "skimage", "sklearn", "open3d", "trimesh", "h5py", "pycocotools",
                  "lightly", "detectron2", "dm_control", "mujoco", "gymnasium", "ale_py")


def module_report(import_name: str) -> str:
    """``VERSION (distribution)`` of an importable module without importing it, or ``not installed``."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec(import_name) is None:
        return "not installed"
    dists = md.packages_distributions().get(import_name, [])
    dists = sorted(dists, key=lambda d: d.replace("-", "_").lower() != import_name.lower())  # own name first
    for dist in dists:
        try:
            version = md.version(dist)
        except md.PackageNotFoundError:
            continue
        return version if dist.replace("-", "_").lower() == import_name.lower() else f"{version} ({dist})"
    return "installed (version unknown)"


def _open3d_plain_import() -> str:
    """Whether ``import open3d`` works in a plain script of this Python (no cvsuite shim)."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("open3d") is None:
        return "not installed"
    proc = subprocess.run([sys.executable, "-c", "import open3d"], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return "yes"
    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return (f"no ({last}); inside cvsuite it works (shared/compat.py preloads libusb); for your own scripts run "
            f"`python tools/link_libusb.py` once or `apt-get install libusb-1.0-0`")


def capability_report(modules: dict[str, Any]) -> dict[str, str]:
    """Back-ends, detectors and weights the apps can use here (each app may add ``doctor() -> dict``)."""
    report: dict[str, str] = {}
    try:
        from .data.video import ffmpeg_exe

        report["H.264 video (ffmpeg from imageio-ffmpeg)"] = f"yes ({Path(ffmpeg_exe()).name})"
    except CvsuiteError as exc:
        report["H.264 video (ffmpeg from imageio-ffmpeg)"] = f"no: {one_line(exc)}"
    report["open3d in your own scripts"] = _open3d_plain_import()
    for name in APP_NAMES:
        hook = getattr(modules.get(name), "doctor", None)
        if hook is None:
            continue
        try:
            report.update({f"{name}: {key}": value for key, value in hook().items()})
        except Exception as exc:  # a failing check is a finding, not a crash
            report[f"{name}: check"] = f"failed ({type(exc).__name__}: {one_line(exc)})"
    return report


def weights_report() -> dict[str, str]:
    """Each shipped weight file of ``weights/MANIFEST.json``: present (sha256 matches) or what is wrong."""
    from .weights import read_manifest, shipped_weight

    report = {}
    for name in sorted(read_manifest()):
        try:
            shipped_weight(name)
            report[name] = "ok"
        except CvsuiteError as exc:
            report[name] = one_line(exc)
    return report


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
        "packages": {name: module_report(name) for name in DOCTOR_MODULES},
        "capabilities": capability_report(modules),
        "weights": weights_report(),
        "apps": {**{name: "usable" for name in modules}, **problems},
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"python {report['python']} on {report['platform']}")
    print(f"torch {report['torch']}  CUDA: {'yes ' + str(report['cuda_devices']) if report['cuda'] else 'no'}  "
          f"threads: {report['threads']} (cpus: {report['cpu_count']})")
    print("packages (import name: version, distribution when it differs):")
    for name, ver in report["packages"].items():
        print(f"  {name:<15} {ver}")
    print("capabilities:")
    for name, value in report["capabilities"].items():
        print(f"  {name}: {value}")
    print("shipped weights:")
    for name, value in report["weights"].items():
        print(f"  {name:<36} {value}")
    print("apps:")
    for name in APP_NAMES:
        print(f"  {name:<9} {report['apps'][name]}")
    return 0


def run_demo(out_dir: Path, modules: dict[str, Any], only: list[str] | None, force: bool = False) -> int:
    """Each app's ``demo(out_dir / app, force=...)``: every file a demo writes is claimed through the
    output guard, so a file cvsuite did not write is replaced only with ``--force``."""
    import inspect

    from .guard import OutputGuard

    OutputGuard(force=force).directory(out_dir)
    failures = 0
    for name in APP_NAMES:
        if name not in modules or (only and name not in only) or not hasattr(modules[name], "demo"):
            continue
        started = time.perf_counter()
        print(f"== {name} demo ==", flush=True)
        try:
            app_demo = modules[name].demo
            takes_force = "force" in inspect.signature(app_demo).parameters
            result = app_demo(out_dir / name, force=force) if takes_force else app_demo(out_dir / name)
        except CvsuiteError as exc:
            failures += 1
            print(f"cvsuite: error: {name} demo: {one_line(exc)}", file=sys.stderr)
            continue
        for key, value in (result or {}).items():
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
        print(f"  ({time.perf_counter() - started:.1f} s, outputs in {out_dir / name})", flush=True)
    return 1 if failures else 0


@contextlib.contextmanager
def quiet_libraries(debug: bool) -> Iterator[None]:
    """Keep library chatter off the terminal while a command runs: Python warnings (numpy, torch,
    matplotlib) are ignored and what C libraries write straight to file descriptor 2 (OpenCV, libpng,
    RPly, FFmpeg) goes to a discarded temporary file. cvsuite checks every result itself and reports a
    problem as its own one line, so stderr holds only what the command means to say. ``--debug``
    lets everything through."""
    if debug:
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sys.stderr.flush()
            real_fd2 = sys.stderr.fileno() == 2  # the terminal's stream (not a test's StringIO)
        except (AttributeError, OSError, ValueError):
            real_fd2 = False
        saved = os.dup(2)
        python_stderr = sys.stderr
        with tempfile.TemporaryFile() as sink:
            if real_fd2:  # Python's own messages still reach the terminal through a copy of fd 2
                sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding or "utf-8",
                                  errors="backslashreplace")
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                if real_fd2:
                    sys.stderr.close()
                    sys.stderr = python_stderr


def _plain_error(exc: BaseException) -> tuple[str, int] | None:
    """One line and exit code for the unexpected errors whose cause is clear without a traceback."""
    text = one_line(exc)
    if isinstance(exc, OSError) and (exc.filename or exc.strerror):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or text}", 1
    if isinstance(exc, MemoryError):
        return "out of memory: an input or a setting is too large for this machine", 1
    if isinstance(exc, (RuntimeError, AssertionError)) and ("NVIDIA driver" in text or "not compiled with CUDA" in text
                                                            or "no CUDA GPUs" in text):
        return "a CUDA device was requested but this machine has no usable CUDA GPU; use --device cpu", 2
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    with contextlib.suppress(AttributeError, ValueError):  # file names that are not UTF-8 print escaped
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        with quiet_libraries(debug):
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
        print(f"cvsuite: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cvsuite: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # unexpected: still one line unless --debug
        if debug:
            traceback.print_exc()
        plain = _plain_error(exc)
        if plain is not None:
            print(f"cvsuite: error: {plain[0]}", file=sys.stderr)
            return plain[1]
        first = one_line(exc).split(" | ")[0]
        print(f"cvsuite: error: {type(exc).__name__}: {first} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
