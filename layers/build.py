"""Build the Lambda layers into ``build/layers/`` without Docker.

    .venv/bin/python -m layers.build          # or: .venv/bin/python layers/build.py
    .venv/bin/python -m layers.build --force  # rebuild even if the stamp matches

* ``build/layers/deps/python/``: the functions' runtime dependencies (``[project].dependencies``),
  pinned to the versions in ``requirements-dev.lock`` (the ones the tests run against), installed
  from manylinux2014 x86_64 wheels for CPython 3.11. Lambda's python3.11 runtime is Amazon Linux 2
  (glibc 2.26), so wheels tagged only manylinux_2_28 would not load there; pip refuses them with
  this platform tag.
* ``build/layers/media/python/``: the processing lanes' libraries (the ``media`` extra: mutagen,
  numpy, Pillow), built the same way, without what the deps layer already ships -- only the
  processing function carries it, always together with deps.
* ``build/layers/ffmpeg/bin/ffmpeg``: the static ffmpeg shipped in the imageio-ffmpeg wheel
  (Lambda mounts a layer at ``/opt``, so the functions find it at ``/opt/bin/ffmpeg``).

Each layer is skipped when its stamp (``build/layers/<name>.stamp.json``) records the same inputs,
and each is assembled in a scratch directory and moved into place only when complete, so a
half-finished build is never mistaken for a finished one. The stack refuses to synthesize when a
layer is missing or its stamp does not match the current inputs (``check``).
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = ROOT / "requirements-dev.lock"
PYPROJECT = ROOT / "pyproject.toml"
OUT_DIR = ROOT / "build" / "layers"
BUILD_COMMAND = ".venv/bin/python -m layers.build"

# Bump when the way a layer is assembled changes, so existing stamps stop matching.
RECIPE_VERSION = "1"
PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--only-binary=:all:",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
)
# The Lambda Python runtime ships these; bundling a second copy only costs space.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer"})
# Shipped by its own layer (the binary only), never by a packages layer.
SEPARATE_LAYERS = frozenset({"imageio-ffmpeg"})
FFMPEG_PACKAGE = "imageio-ffmpeg"
FFMPEG_BINARY_GLOB = "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v*"

Lock = dict[str, tuple[str, set[str]]]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Layer:
    name: str
    # Relative to the layer directory: a path that exists only in a complete build.
    marker_path: str

    @property
    def directory(self) -> Path:
        return OUT_DIR / self.name

    @property
    def stamp_path(self) -> Path:
        return OUT_DIR / f"{self.name}.stamp.json"

    @property
    def marker(self) -> Path:
        return self.directory / self.marker_path


@dataclass(frozen=True)
class PackagesLayer(Layer):
    """Locked packages pip-installed under ``python/`` (Lambda puts ``/opt/python`` on sys.path)."""

    marker_path: str = "python"
    # The pyproject extra whose packages it ships; None: ``[project].dependencies``.
    extra: str | None = None
    # Layers every function with this one also carries: what they ship is left out of this one.
    alongside: tuple[PackagesLayer, ...] = ()
    # Globs under ``python/`` that nothing imports at runtime (test suites), removed to save space.
    prune: tuple[str, ...] = ()


DEPS = PackagesLayer("deps")
FFMPEG = Layer("ffmpeg", marker_path="bin/ffmpeg")
# numpy's own test suites (numpy/tests, numpy/_core/tests, ...): ~6 MB that only numpy.test() reads.
MEDIA = PackagesLayer("media", extra="media", alongside=(DEPS,), prune=("numpy/**/tests",))
LAYERS: tuple[Layer, ...] = (DEPS, FFMPEG, MEDIA)
PACKAGES_LAYERS = tuple(layer for layer in LAYERS if isinstance(layer, PackagesLayer))


# --- inputs -------------------------------------------------------------------------------------


def read_lock(path: Path = LOCK_FILE) -> Lock:
    """``{canonical name: (version, {canonical names it is required via})}`` from a uv/pip-compile
    lock with ``# via`` annotations."""
    pins: Lock = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            current = canonical(match.group(1))
            pins[current] = (match.group(3), set())
            continue
        if current and line.startswith("#"):
            via = line.lstrip("#").strip()
            via = via.removeprefix("via").strip()
            if via and not via.startswith("-r"):
                pins[current][1].add(via if "(" in via else canonical(via))
    return pins


def roots(layer: PackagesLayer, path: Path = PYPROJECT) -> set[str]:
    """The packages ``layer`` is declared to ship, by name: ``[project].dependencies`` or the
    layer's ``[project.optional-dependencies]`` extra."""
    project = tomllib.loads(path.read_text())["project"]
    specs = project["dependencies"] if layer.extra is None else project["optional-dependencies"][layer.extra]
    return {canonical(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def closure(lock: Lock, roots: Iterable[str], *, provided: Iterable[str] = ()) -> dict[str, str]:
    """Every locked package ``roots`` need, transitively, except what Lambda provides, what another
    layer ships, and ``provided``. The lock's ``# via`` lines are the reverse dependency edges."""
    excluded = PROVIDED_BY_RUNTIME | SEPARATE_LAYERS | set(provided)
    needed = {root for root in roots if root not in excluded}
    missing = needed - lock.keys()
    if missing:
        raise SystemExit(f"{sorted(missing)} are declared in {PYPROJECT.name} but not pinned in {LOCK_FILE.name}")
    changed = True
    while changed:
        changed = False
        for name, (_, vias) in lock.items():
            if name not in needed and name not in excluded and vias & needed:
                needed.add(name)
                changed = True
    return {name: lock[name][0] for name in sorted(needed)}


def pins(layer: PackagesLayer, lock: Lock | None = None, pyproject: Path = PYPROJECT) -> dict[str, str]:
    """What ``layer`` installs: its roots' locked closure minus what the layers alongside ship."""
    lock = read_lock() if lock is None else lock
    shipped_alongside = {name for other in layer.alongside for name in pins(other, lock, pyproject)}
    return closure(lock, roots(layer, pyproject), provided=shipped_alongside)


def fingerprint(layer: Layer, inputs: object) -> dict[str, object]:
    payload = {"layer": layer.name, "recipe": RECIPE_VERSION, "platform": PLATFORM_ARGS, "inputs": inputs}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return {**payload, "sha256": digest}


# --- recipes ------------------------------------------------------------------------------------

Filler = Callable[[Path, Path], None]  # (directory to fill, scratch directory)


def recipe(layer: Layer, lock: Lock) -> tuple[dict[str, object], Filler]:
    """The stamp a complete build of ``layer`` records, and how to fill its directory."""
    if isinstance(layer, PackagesLayer):
        layer_pins = pins(layer, lock)
        # What the layer is built from: the pins, a pruning layer's patterns, and how its bytecode
        # is compiled (for which Python).
        inputs: dict[str, object] = {"packages": layer_pins, **BYTECODE}
        if layer.prune:
            inputs["prune"] = list(layer.prune)
        return fingerprint(layer, inputs), _fill_packages(layer, layer_pins)
    if layer == FFMPEG:
        version = lock[FFMPEG_PACKAGE][0]
        inputs = {FFMPEG_PACKAGE: version, "binary": FFMPEG_BINARY_GLOB}
        return fingerprint(layer, inputs), _fill_ffmpeg(version)
    raise ValueError(f"no recipe for layer {layer.name!r}")


# --- status -------------------------------------------------------------------------------------


def _stamp_matches(layer: Layer, expected: dict[str, object]) -> bool:
    if not (layer.marker.exists() and layer.stamp_path.exists()):
        return False
    try:
        recorded = json.loads(layer.stamp_path.read_text())
    except ValueError:
        return False
    return bool(recorded.get("sha256") == expected["sha256"])


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def problems() -> list[str]:
    """Why the built layers cannot be used as they are (empty when they can)."""
    lock = read_lock()
    found = []
    for layer in LAYERS:
        expected, _ = recipe(layer, lock)
        if not layer.marker.exists():
            found.append(f"{_shown(layer.marker)} does not exist")
        elif not _stamp_matches(layer, expected):
            found.append(f"{_shown(layer.directory)} is out of date with {LOCK_FILE.name}")
    return found


def check() -> None:
    """Raise with the command to run when a layer is missing or stale."""
    found = problems()
    if found:
        raise LayersNotBuiltError(
            "Lambda layers are not built: "
            + "; ".join(found)
            + f". Run `{BUILD_COMMAND}` from the repository root (no Docker needed), then synthesize again."
        )


class LayersNotBuiltError(RuntimeError):
    pass


def directory_size(path: Path) -> int:
    """Bytes of regular files under ``path`` (what Lambda counts as unzipped size)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --- building -----------------------------------------------------------------------------------


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check", "--no-input", *args]
    subprocess.run(command, check=True)  # noqa: S603  (this interpreter's pip, our own arguments)


def _install_into_place(layer: Layer, stamp: dict[str, object], fill: Filler) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT_DIR, prefix=f".{layer.name}-") as scratch:
        staged = Path(scratch) / layer.name
        staged.mkdir()
        fill(staged, Path(scratch))
        layer.stamp_path.unlink(missing_ok=True)
        if layer.directory.exists():
            shutil.rmtree(layer.directory)
        staged.rename(layer.directory)
    layer.stamp_path.write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def _fill_packages(layer: PackagesLayer, layer_pins: dict[str, str]) -> Filler:
    def fill(staged: Path, scratch: Path) -> None:
        requirements = scratch / "requirements.txt"
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in layer_pins.items()))
        target = staged / "python"
        # --no-deps: the pins are already the full closure; letting pip resolve would pull in
        # botocore (a dependency of pynamodb and aws-xray-sdk) that the runtime already has, and
        # into the media layer packages the deps layer already ships.
        try:
            _pip(
                "install", *PLATFORM_ARGS, "--no-deps", "--no-compile",
                "--target", str(target), "-r", str(requirements),
            )  # fmt: skip
        except subprocess.CalledProcessError:
            raise SystemExit(_explain_missing_wheels(layer, layer_pins, scratch)) from None
        # Console scripts are of no use in a layer.
        shutil.rmtree(target / "bin", ignore_errors=True)
        prunable = [p for pattern in layer.prune for p in target.glob(pattern) if p.is_dir()]
        for directory in [*prunable, *target.rglob("__pycache__")]:
            shutil.rmtree(directory, ignore_errors=True)  # a pruned tree may hold a later match
        _compile(target)

    return fill


# Lambda mounts a layer read-only at /opt, so Python cannot write the bytecode it compiles: without
# bytecode in the layer, every cold start compiles every module it imports from source (the deps
# layer's imports: 0.74 s from source against 0.40 s with bytecode, measured here). Unchecked-hash
# bytecode is used as it is, whatever the files' timestamps in the zip; the layer only changes by a
# rebuild, which compiles again. The file names in tracebacks are where Lambda mounts the layer.
BYTECODE = {"bytecode": "unchecked-hash", "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


def _compile(target: Path) -> None:
    if not compileall.compile_dir(
        str(target),
        quiet=2,
        ddir="/opt/python",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        workers=0,
    ):
        # A file that does not compile (a test module written for another Python) is left as
        # source: Python compiles it on import, as before. Nothing in a layer is lost.
        print("layers.build: some modules did not compile; they load from source", flush=True)


def _explain_missing_wheels(layer: Layer, layer_pins: dict[str, str], scratch: Path) -> str:
    """Name the pins that have no wheel Lambda's python3.11 (Amazon Linux 2, glibc 2.26) can load."""
    missing = []
    for name, version in layer_pins.items():
        probe = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check", "download"]
        args = [*PLATFORM_ARGS, "--no-deps", "--dest", str(scratch / "probe"), f"{name}=={version}"]
        if subprocess.run([*probe, *args], capture_output=True, check=False).returncode != 0:  # noqa: S603
            missing.append(f"{name}=={version}")
    return f"layers.build: pip could not install the {layer.name} layer. " + (
        f"No manylinux2014 (glibc <= 2.17) cp311 x86_64 wheel exists for: {', '.join(missing)}. "
        "Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26), so wheels tagged only "
        "manylinux_2_27/2_28 cannot load there. Pin a version that still ships manylinux2014 "
        "wheels in pyproject.toml / requirements-dev.lock, or move the functions to python3.12 "
        "(Amazon Linux 2023) together with the layer platform."
        if missing
        else "See pip's output above."
    )


def _fill_ffmpeg(version: str) -> Filler:
    def fill(staged: Path, scratch: Path) -> None:
        downloads = scratch / "downloads"
        _pip("download", *PLATFORM_ARGS, "--no-deps", "--dest", str(downloads), f"{FFMPEG_PACKAGE}=={version}")
        (wheel,) = downloads.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if Path(n).match(FFMPEG_BINARY_GLOB)]
            if len(members) != 1:
                raise SystemExit(f"expected one ffmpeg binary in {wheel.name}, found {members}")
            binary = staged / "bin" / "ffmpeg"
            binary.parent.mkdir()
            with archive.open(members[0]) as source, binary.open("wb") as dest:
                shutil.copyfileobj(source, dest)
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    return fill


def _size(layer: Layer) -> str:
    return f"{directory_size(layer.directory) / 1e6:.1f} MB unzipped"


def build(*, force: bool = False) -> None:
    lock = read_lock()
    for layer in LAYERS:
        stamp, fill = recipe(layer, lock)
        if not force and _stamp_matches(layer, stamp):
            print(f"layers.build: {layer.name} is up to date ({_shown(layer.directory)}, {_size(layer)})")
            continue
        started = time.monotonic()
        print(f"layers.build: building {layer.name} ...", flush=True)
        _install_into_place(layer, stamp, fill)
        print(f"layers.build: {layer.name} built in {time.monotonic() - started:.1f}s, {_size(layer)}")


def print_requirements(names: Iterable[str]) -> None:
    """Each packages layer's pins as requirements lines, under a ``# <layer> layer`` heading."""
    lock = read_lock()
    for layer in PACKAGES_LAYERS:
        if layer.name in names:
            print(f"# {layer.name} layer")
            for name, version in pins(layer, lock).items():
                print(f"{name}=={version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layers.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamps match")
    parser.add_argument("--check", action="store_true", help="only report whether the layers are usable")
    packages = [layer.name for layer in PACKAGES_LAYERS]
    parser.add_argument(
        "--print-requirements",
        nargs="?",
        const="all",
        choices=[*packages, "all"],
        metavar="LAYER",
        help=f"print the pins of one packages layer ({', '.join(packages)}) or, without LAYER, of each",
    )
    args = parser.parse_args(argv)
    if args.print_requirements:
        print_requirements(packages if args.print_requirements == "all" else [args.print_requirements])
        return 0
    if args.check:
        found = problems()
        for problem in found:
            print(f"layers.build: {problem}", file=sys.stderr)
        return 1 if found else 0
    os.chdir(ROOT)
    build(force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
