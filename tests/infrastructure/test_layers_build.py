"""The layer build: which packages go into the deps and media layers, and what synth does without
layers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from aws_cdk import App, Stack

from layers import build as layer_build
from stacks.constructs.layers import Layers

LOCK = """\
aws-lambda-powertools==3.37.0
    # via tracklane (pyproject.toml)
aws-xray-sdk==2.15.0
    # via
    #   aws-lambda-powertools
    #   moto
boto3==1.44.5
    # via
    #   tracklane (pyproject.toml)
    #   moto
botocore==1.44.5
    # via
    #   aws-xray-sdk
    #   boto3
    #   pynamodb
jmespath==1.1.0
    # via
    #   aws-lambda-powertools
    #   boto3
    #   botocore
moto==5.2.5
    # via tracklane (pyproject.toml)
pynamodb==6.1.0
    # via tracklane (pyproject.toml)
python-dateutil==2.9.0.post0
    # via botocore
wrapt==2.5.2
    # via aws-xray-sdk
"""


def test_deps_layer_is_the_runtime_closure_without_what_lambda_provides(tmp_path: Path) -> None:
    lock_file = tmp_path / "requirements-dev.lock"
    lock_file.write_text(LOCK)
    pins = layer_build.closure(layer_build.read_lock(lock_file), {"aws-lambda-powertools", "boto3", "pynamodb"})
    # botocore comes only via pynamodb / aws-xray-sdk / boto3 and python-dateutil only via botocore:
    # the runtime has them. moto is a dev dependency.
    assert pins == {
        "aws-lambda-powertools": "3.37.0",
        "aws-xray-sdk": "2.15.0",
        "jmespath": "1.1.0",
        "pynamodb": "6.1.0",
        "wrapt": "2.5.2",
    }


MEDIA_LOCK = """\
pillow==12.2.0
    # via tracklane (pyproject.toml)
pydantic==2.14.3
    # via tracklane (pyproject.toml)
scipy==1.15.3
    # via tracklane (pyproject.toml)
numpy==2.2.6
    # via
    #   tracklane (pyproject.toml)
    #   scipy
typing-extensions==4.16.0
    # via
    #   pydantic
    #   scipy
"""


def test_media_layer_leaves_out_what_the_deps_layer_already_ships(tmp_path: Path) -> None:
    lock_file = tmp_path / "requirements-dev.lock"
    lock_file.write_text(MEDIA_LOCK)
    lock = layer_build.read_lock(lock_file)
    deps = layer_build.closure(lock, {"pydantic"})
    pins = layer_build.closure(lock, {"pillow", "scipy"}, provided=deps)
    # numpy comes in through scipy; typing-extensions too, but the deps layer (always alongside) has it.
    assert deps == {"pydantic": "2.14.3", "typing-extensions": "4.16.0"}
    assert pins == {"numpy": "2.2.6", "pillow": "12.2.0", "scipy": "1.15.3"}


def test_real_lock_pins_every_declared_runtime_dependency() -> None:
    pins = layer_build.pins(layer_build.DEPS)
    declared = {"fastapi", "mangum", "pydantic", "pydantic-settings", "pynamodb", "pyjwt", "aws-lambda-powertools"}
    assert declared <= set(pins)
    assert not {"boto3", "botocore", "imageio-ffmpeg", "moto", "pytest"} & set(pins)
    assert not {"mutagen", "numpy", "pillow"} & set(pins), "the media libraries belong in the media layer"


def test_real_lock_pins_the_media_extra_into_the_media_layer_only() -> None:
    deps, media = layer_build.pins(layer_build.DEPS), layer_build.pins(layer_build.MEDIA)
    assert layer_build.roots(layer_build.MEDIA) == {"mutagen", "numpy", "pillow"}
    assert {"mutagen", "numpy", "pillow"} <= set(media)
    assert not set(media) & set(deps)
    assert not {"boto3", "botocore", "imageio-ffmpeg", "moto", "pytest"} & set(media)


def test_the_media_layers_pruning_is_part_of_its_stamp() -> None:
    lock = layer_build.read_lock()
    as_built, _ = layer_build.recipe(layer_build.MEDIA, lock)
    unpruned, _ = layer_build.recipe(dataclasses.replace(layer_build.MEDIA, prune=()), lock)
    assert as_built["sha256"] != unpruned["sha256"]


def test_synth_refuses_missing_layers_and_names_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer_build, "OUT_DIR", tmp_path / "nothing-built-here")
    with pytest.raises(layer_build.LayersNotBuiltError) as raised:
        Layers(Stack(App(), "Probe"), "Layers")
    message = str(raised.value)
    assert layer_build.BUILD_COMMAND in message
    assert "deps" in message and "ffmpeg" in message and "media" in message


def test_a_layer_built_from_another_lock_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layer_build, "OUT_DIR", tmp_path)
    (tmp_path / "deps" / "python").mkdir(parents=True)
    (tmp_path / "deps.stamp.json").write_text('{"sha256": "from-an-older-lock"}')
    (tmp_path / "ffmpeg" / "bin").mkdir(parents=True)
    (tmp_path / "ffmpeg" / "bin" / "ffmpeg").write_bytes(b"")
    problems = layer_build.problems()
    assert any("deps" in p and "out of date" in p for p in problems), problems
