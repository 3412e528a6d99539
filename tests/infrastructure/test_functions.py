"""The Lambda functions: what code and layers each one gets, how big that is, and its settings."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from functions.api.app import ROUTER_PREFIXES
from functions.workflow.definition import WORKFLOW
from layers import build as layer_build
from stacks.constructs.layers import FFMPEG_PATH
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, logical_id_by_path
from tests.lazily_loaded import LANE_MODULES, SWEEP_MODULES

# Lambda's limit for a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
FUNCTIONS = {
    "api": ("Api/Function", "functions.handlers.api.handler"),
    "finalize": ("Ingest/Finalize", "functions.handlers.finalize_on_put.handler"),
    "processing": ("Processing/Step", "functions.handlers.workflow_step.handler"),
    "sweeper": ("Sweeper/Function", "functions.handlers.sweeper.handler"),
    "domain_events": ("DomainEvents/Publisher", "functions.handlers.domain_events.handler"),
}
# Modules a function imports only when an invocation needs them (cold start: tests/unit/test_cold_imports.py):
# a module its layers lack would otherwise fail only then, in AWS. Every function traces (X-Ray).
LOADED_LATER = {
    "api": ("functions.api.signing_keys", *(f"functions.api.routers.{name}" for name in ROUTER_PREFIXES)),
    "processing": (
        *LANE_MODULES,
        "functions.domain.catalog.track_mutations",
        "functions.domain.catalog.albums",
    ),
    "sweeper": SWEEP_MODULES,
}
TRACING = ("aws_lambda_powertools.tracing.tracer", "aws_xray_sdk.core")
# What the python3.11 Lambda runtime ships besides the standard library (boto3 and its deps).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


def _function(synth: Synth, name: str) -> dict[str, Any]:
    return synth.properties(logical_id_by_path(synth, f"/{FUNCTIONS[name][0]}/Resource"))


def _layer_ids(synth: Synth, name: str) -> list[str]:
    return [ref["Ref"] for ref in _function(synth, name).get("Layers", [])]


def _code_dir(synth: Synth, name: str) -> Path:
    return synth.asset_dir(_function(synth, name)["Code"]["S3Key"])


def _layer_dir(synth: Synth, layer_id: str) -> Path:
    return synth.asset_dir(synth.properties(layer_id)["Content"]["S3Key"])


def test_each_function_runs_its_handler_on_python311_x86_64_with_tracing(synth: Synth) -> None:
    for name, (_, handler) in FUNCTIONS.items():
        function = _function(synth, name)
        assert function["Handler"] == handler, name
        assert function["Runtime"] == "python3.11", name
        assert function["Architectures"] == ["x86_64"], name
        assert function["TracingConfig"] == {"Mode": "Active"}, name
        assert function["LoggingConfig"]["LogGroup"], name
        variables = function["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == "tracklane", name
        media = logical_id_by_path(synth, "/Storage/Media/Resource")
        assert variables["TRACKLANE_MEDIA_BUCKET"] == {"Ref": media}, name


def test_function_sizes_and_timeouts(synth: Synth) -> None:
    api, finalize, processing, sweeper = (_function(synth, n) for n in ("api", "finalize", "processing", "sweeper"))
    assert (api["MemorySize"], api["Timeout"]) == (512, 29)
    assert finalize["Timeout"] == 60
    # Its Tasks (probe, the renditions) time out after 900 s and take one vCPU; test_workflow
    # checks every step function's memory and timeout.
    assert (processing["MemorySize"], processing["Timeout"]) == (1769, 885)
    assert processing["EphemeralStorage"] == {"Size": 4096}
    assert (sweeper["MemorySize"], sweeper["Timeout"]) == (512, 300)


def test_no_function_reserves_concurrency_by_default(synth: Synth) -> None:
    """Lambda refuses a reservation that leaves under 100 unreserved: it would fail a deployment on an
    account with a concurrency quota of 10 or 50."""
    for lid, function in synth.resources("AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], lid


def test_log_groups_have_a_retention(synth: Synth) -> None:
    for lid, group in synth.resources("AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] > 0, lid


def test_api_finalize_and_sweeper_know_the_state_machine_and_processing_knows_ffmpeg(synth: Synth) -> None:
    machine = {"Ref": logical_id_by_path(synth, "/Processing/Workflow/Resource")}
    for name in ("api", "finalize", "sweeper"):
        assert _function(synth, name)["Environment"]["Variables"]["TRACKLANE_STATE_MACHINE_ARN"] == machine
    assert _function(synth, "processing")["Environment"]["Variables"]["TRACKLANE_FFMPEG_PATH"] == FFMPEG_PATH


def test_processing_gets_each_configured_external_processor_and_no_variable_for_the_others(
    synth: Synth, variant: Synth
) -> None:
    names = {"TRACKLANE_STEMS_PROCESSOR", "TRACKLANE_LYRICS_PROCESSOR"}
    for deployed in (synth, variant):
        for name in FUNCTIONS.keys() - {"processing"}:
            assert not names & _function(deployed, name)["Environment"]["Variables"].keys(), name
    assert not names & _function(synth, "processing")["Environment"]["Variables"].keys()
    variables = _function(variant, "processing")["Environment"]["Variables"]
    assert variables["TRACKLANE_STEMS_PROCESSOR"] == VARIANT_CONTEXT["stemsProcessor"]
    assert variables["TRACKLANE_LYRICS_PROCESSOR"] == VARIANT_CONTEXT["lyricsProcessor"]


def test_default_upload_entitlement_comes_from_context(synth: Synth, variant: Synth) -> None:
    for deployed, expected in ((synth, "allow"), (variant, "deny")):
        variables = _function(deployed, "api")["Environment"]["Variables"]
        assert variables["TRACKLANE_DEFAULT_UPLOAD_ENTITLEMENT"] == expected


def _step_function_ids(synth: Synth) -> set[str]:
    return {
        lid
        for lid, function in synth.resources("AWS::Lambda::Function").items()
        if function["Properties"].get("Handler") == FUNCTIONS["processing"][1]
    }


def test_only_processing_gets_the_ffmpeg_and_media_layers(synth: Synth) -> None:
    deps, ffmpeg, media = (logical_id_by_path(synth, f"/Layers/{n}/Resource") for n in ("Deps", "Ffmpeg", "Media"))
    assert _layer_ids(synth, "processing") == [deps, ffmpeg, media]
    for name in FUNCTIONS.keys() - {"processing"}:
        assert _layer_ids(synth, name) == [deps], name
    # Every function in the template, CDK's own deploy-time handlers included.
    steps = _step_function_ids(synth)
    assert len(steps) == len({(task.timeout_seconds, task.memory_mb) for task in WORKFLOW.tasks()})
    for lid, function in synth.resources("AWS::Lambda::Function").items():
        layers = [ref["Ref"] for ref in function["Properties"].get("Layers", [])]
        if lid in steps:
            assert layers == [deps, ffmpeg, media], lid
        else:
            assert not {ffmpeg, media} & set(layers), lid


def test_ffmpeg_layer_puts_an_executable_at_opt_bin_ffmpeg(synth: Synth) -> None:
    binary = _layer_dir(synth, logical_id_by_path(synth, "/Layers/Ffmpeg/Resource")) / "bin" / "ffmpeg"
    assert FFMPEG_PATH == "/opt/bin/ffmpeg"
    assert binary.is_file()
    assert os.access(binary, os.X_OK)
    assert binary.read_bytes()[:4] == b"\x7fELF"


def test_code_and_layers_fit_lambdas_unzipped_limit(synth: Synth) -> None:
    """The processing function (code + deps + ffmpeg + media) is the one near the limit."""
    for name in FUNCTIONS:
        parts = {"code": _code_dir(synth, name)} | {lid: _layer_dir(synth, lid) for lid in _layer_ids(synth, name)}
        sizes = {part: layer_build.directory_size(directory) for part, directory in parts.items()}
        total = sum(sizes.values())
        shown = ", ".join(f"{part} {size / 2**20:.0f} MiB" for part, size in sizes.items())
        assert total < UNZIPPED_LIMIT_BYTES, f"{name}: {total / 2**20:.0f} MiB unzipped ({shown})"


def test_media_layer_imports_its_libraries_and_ships_no_test_suites(synth: Synth) -> None:
    """Pruning numpy's tests must leave everything an import reaches; the deps layer is always alongside."""
    media = _layer_dir(synth, logical_id_by_path(synth, "/Layers/Media/Resource")) / "python"
    deps = _layer_dir(synth, logical_id_by_path(synth, "/Layers/Deps/Resource")) / "python"
    for pattern in layer_build.MEDIA.prune:
        assert not list(media.glob(pattern)), pattern
    program = (
        "import sys, io\n"
        f"sys.path[:0] = {[str(media), str(deps)]!r}\n"
        "import numpy, numpy.fft, numpy.linalg, numpy.random\n"
        "from PIL import Image\n"
        "import mutagen, mutagen.id3, mutagen.flac, mutagen.mp4\n"
        f"assert numpy.__file__.startswith({str(media)!r}), numpy.__file__\n"
        "spectrum = numpy.abs(numpy.fft.rfft(numpy.sin(numpy.linspace(0, 880 * numpy.pi, 44100))))\n"
        "assert int(spectrum.argmax()) == 440\n"
        "buffer = io.BytesIO()\n"
        "Image.new('RGB', (64, 64), (200, 30, 30)).save(buffer, 'JPEG')\n"
        "assert Image.open(io.BytesIO(buffer.getvalue())).size == (64, 64)\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", program],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_layers_ship_bytecode_for_every_module_compiled_from_that_very_source(synth: Synth) -> None:
    """Lambda mounts layers read-only: bytecode not shipped is compiled from source on every cold
    start. Unchecked-hash bytecode (flags 0b01) is used without looking at the source's timestamp,
    so it must have been compiled from exactly the source beside it: its recorded hash says so."""
    for layer in ("Deps", "Media"):
        site = _layer_dir(synth, logical_id_by_path(synth, f"/Layers/{layer}/Resource")) / "python"
        sources = list(site.rglob("*.py"))
        assert len(sources) > 100, layer
        for source in sources:
            cached = Path(importlib.util.cache_from_source(str(source)))
            assert cached.is_file(), source
            header = cached.read_bytes()[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, source
            assert int.from_bytes(header[4:8], "little") == 0b01, source  # hash-based, unchecked
            assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source


def test_code_asset_is_the_functions_package_only(synth: Synth) -> None:
    """local/ carries a dev-only HS256 token path: it must never be deployed."""
    code_dirs = {_code_dir(synth, name) for name in FUNCTIONS}
    assert len(code_dirs) == 1, "all functions share one code asset"
    (code,) = code_dirs
    assert sorted(p.name for p in code.iterdir()) == ["functions"]
    assert (code / "functions" / "handlers" / "api.py").is_file()
    staged = [p.relative_to(code) for p in code.rglob("*")]
    for path in staged:
        assert path.parts[0] == "functions", path
        assert "local" not in path.parts and "tests" not in path.parts, path
        assert "__pycache__" not in path.parts and path.suffix != ".pyc", path


def _installed(site: Path) -> dict[str, str]:
    installed = {}
    for dist_info in site.glob("*.dist-info"):
        name, version = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)
        installed[layer_build.canonical(name)] = version
    return installed


def test_deps_layer_holds_the_locked_runtime_deps_and_not_boto3(synth: Synth) -> None:
    installed = _installed(_layer_dir(synth, logical_id_by_path(synth, "/Layers/Deps/Resource")) / "python")
    assert installed == layer_build.pins(layer_build.DEPS)
    assert not {"boto3", "botocore", "s3transfer"} & installed.keys()


def test_media_layer_holds_the_locked_media_extra_and_nothing_the_deps_layer_has(synth: Synth) -> None:
    installed = _installed(_layer_dir(synth, logical_id_by_path(synth, "/Layers/Media/Resource")) / "python")
    assert installed == layer_build.pins(layer_build.MEDIA)
    assert {"mutagen", "numpy", "pillow"} <= installed.keys()
    assert not installed.keys() & layer_build.pins(layer_build.DEPS).keys()


@pytest.fixture(scope="module")
def runtime_provided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for what the Lambda runtime adds to sys.path: boto3 and its dependencies."""
    target = tmp_path_factory.mktemp("lambda-runtime")
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PROVIDED:
        (target / name).symlink_to(site / name)
    return target


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_handler_imports_with_only_its_code_layers_and_the_runtime(
    synth: Synth, runtime_provided: Path, name: str
) -> None:
    """Catches a module the code imports but the deps layer lacks (it would fail only in AWS), at
    import or later (``LOADED_LATER``)."""
    module, _, attribute = FUNCTIONS[name][1].rpartition(".")
    paths = [
        str(_code_dir(synth, name)),
        *(str(_layer_dir(synth, lid) / "python") for lid in _layer_ids(synth, name)),
        str(runtime_provided),
    ]
    program = (
        "import sys, importlib\n"
        f"sys.path[:0] = {paths!r}\n"
        f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "assert callable(handler)\n"
        f"for later in {[*LOADED_LATER.get(name, ()), *TRACING]!r}:\n"
        "    importlib.import_module(later)\n"
        "leaked = sorted(m for m in ('pytest', 'moto', 'local', 'imageio_ffmpeg') if m in sys.modules)\n"
        "assert not leaked, leaked\n"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "LAMBDA_TASK_ROOT": str(_code_dir(synth, name)),
    }
    # -S: no site-packages (so nothing from the venv leaks in); -I: no environment-driven paths;
    # -B: no __pycache__ written into the staged asset, which other workers are reading.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", program],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
