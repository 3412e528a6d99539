"""Build the Lambda layers into ``build/layers/`` without Docker.

    .venv/bin/python -m layers.build          # or: .venv/bin/python layers/build.py
    .venv/bin/python -m layers.build --force  # rebuild even if the stamp matches

* ``build/layers/deps/python/``: the functions' runtime dependencies, pinned to the versions in
  ``requirements-dev.lock`` (the ones the tests run against), installed from manylinux2014 x86_64
  wheels for CPython 3.11. Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26), so wheels
  tagged only manylinux_2_28 would not load there; pip refuses them with this platform tag.
* ``build/layers/ffmpeg/bin/ffmpeg``: the static ffmpeg shipped in the imageio-ffmpeg wheel
  (Lambda mounts a layer at ``/opt``, so the functions find it at ``/opt/bin/ffmpeg``).

Each layer is skipped when its stamp (``build/layers/<name>.stamp.json``) records the same inputs,
and each is assembled in a scratch directory and moved into place only when complete, so a
half-finished build is never mistaken for a finished one. The stack refuses to synthesize when a
layer is missing or its stamp does not match the current inputs (``check``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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
# Shipped by its own layer (the binary only), never by the deps layer.
SEPARATE_LAYERS = frozenset({"imageio-ffmpeg"})
FFMPEG_PACKAGE = "imageio-ffmpeg"
FFMPEG_BINARY_GLOB = "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v*"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Layer:
    name: str

    @property
    def directory(self) -> Path:
        return OUT_DIR / self.name

    @property
    def stamp_path(self) -> Path:
        return OUT_DIR / f"{self.name}.stamp.json"

    @property
    def marker(self) -> Path:
        """A path that exists only in a complete build of this layer."""
        return self.directory / ("python" if self.name == "deps" else "bin/ffmpeg")


DEPS = Layer("deps")
FFMPEG = Layer("ffmpeg")


# --- inputs -------------------------------------------------------------------------------------


def read_lock(path: Path = LOCK_FILE) -> dict[str, tuple[str, set[str]]]:
    """``{canonical name: (version, {canonical names it is required via})}`` from a uv/pip-compile
    lock with ``# via`` annotations."""
    pins: dict[str, tuple[str, set[str]]] = {}
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


def runtime_roots(path: Path = PYPROJECT) -> set[str]:
    """The project's declared runtime dependencies (``[project].dependencies``), by name."""
    dependencies = tomllib.loads(path.read_text())["project"]["dependencies"]
    return {canonical(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in dependencies}


def runtime_pins(lock: dict[str, tuple[str, set[str]]], roots: Iterable[str]) -> dict[str, str]:
    """Every locked package the runtime roots need, transitively, except what Lambda provides and
    what another layer ships. The lock's ``# via`` lines are the reverse dependency edges."""
    excluded = PROVIDED_BY_RUNTIME | SEPARATE_LAYERS
    needed = {root for root in roots if root not in excluded}
    missing = needed - lock.keys()
    if missing:
        raise SystemExit(f"{sorted(missing)} are runtime dependencies but not pinned in {LOCK_FILE.name}")
    changed = True
    while changed:
        changed = False
        for name, (_, vias) in lock.items():
            if name not in needed and name not in excluded and vias & needed:
                needed.add(name)
                changed = True
    return {name: lock[name][0] for name in sorted(needed)}


def fingerprint(layer: Layer, inputs: object) -> dict[str, object]:
    payload = {"layer": layer.name, "recipe": RECIPE_VERSION, "platform": PLATFORM_ARGS, "inputs": inputs}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return {**payload, "sha256": digest}


def deps_fingerprint() -> dict[str, object]:
    return fingerprint(DEPS, runtime_pins(read_lock(), runtime_roots()))


def ffmpeg_fingerprint() -> dict[str, object]:
    version = read_lock()[FFMPEG_PACKAGE][0]
    return fingerprint(FFMPEG, {FFMPEG_PACKAGE: version, "binary": FFMPEG_BINARY_GLOB})


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
    found = []
    for layer, expected in ((DEPS, deps_fingerprint()), (FFMPEG, ffmpeg_fingerprint())):
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


Filler = Callable[[Path, Path], None]  # (directory to fill, scratch directory)


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


def _fill_deps(pins: dict[str, str]) -> Filler:
    def fill(staged: Path, scratch: Path) -> None:
        requirements = scratch / "requirements.txt"
        requirements.write_text("".join(f"{name}=={version}\n" for name, version in pins.items()))
        target = staged / "python"
        # --no-deps: the pins are already the full closure; letting pip resolve would pull in
        # botocore (a dependency of pynamodb and aws-xray-sdk) that the runtime already has.
        try:
            _pip(
                "install", *PLATFORM_ARGS, "--no-deps", "--no-compile",
                "--target", str(target), "-r", str(requirements),
            )  # fmt: skip
        except subprocess.CalledProcessError:
            raise SystemExit(_explain_missing_wheels(pins, scratch)) from None
        # Console scripts are of no use in a layer.
        shutil.rmtree(target / "bin", ignore_errors=True)
        for cache_dir in list(target.rglob("__pycache__")):
            shutil.rmtree(cache_dir, ignore_errors=True)

    return fill


def _explain_missing_wheels(pins: dict[str, str], scratch: Path) -> str:
    """Name the pins that have no wheel Lambda's python3.11 (Amazon Linux 2, glibc 2.26) can load."""
    missing = []
    for name, version in pins.items():
        probe = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check", "download"]
        args = [*PLATFORM_ARGS, "--no-deps", "--dest", str(scratch / "probe"), f"{name}=={version}"]
        if subprocess.run([*probe, *args], capture_output=True, check=False).returncode != 0:  # noqa: S603
            missing.append(f"{name}=={version}")
    return "layers.build: pip could not install the deps layer. " + (
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


def build(*, force: bool = False) -> None:
    pins = runtime_pins(read_lock(), runtime_roots())
    plans = (
        (DEPS, deps_fingerprint(), _fill_deps(pins)),
        (FFMPEG, ffmpeg_fingerprint(), _fill_ffmpeg(read_lock()[FFMPEG_PACKAGE][0])),
    )
    for layer, stamp, fill in plans:
        if not force and _stamp_matches(layer, stamp):
            print(f"layers.build: {layer.name} is up to date ({_shown(layer.directory)})")
            continue
        started = time.monotonic()
        print(f"layers.build: building {layer.name} ...", flush=True)
        _install_into_place(layer, stamp, fill)
        size_mb = directory_size(layer.directory) / 1e6
        print(f"layers.build: {layer.name} built in {time.monotonic() - started:.1f}s, {size_mb:.1f} MB unzipped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layers.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the stamps match")
    parser.add_argument("--check", action="store_true", help="only report whether the layers are usable")
    parser.add_argument("--print-requirements", action="store_true", help="print the deps layer pins")
    args = parser.parse_args(argv)
    if args.print_requirements:
        for name, version in runtime_pins(read_lock(), runtime_roots()).items():
            print(f"{name}=={version}")
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
