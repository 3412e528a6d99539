"""Only the processing function carries the media layer (Pillow, numpy, mutagen): every other
handler must load without it, or it would fail at import time in AWS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

MEDIA_LIBRARIES = ("numpy", "PIL", "mutagen")


def imported_by(module: str) -> set[str]:
    script = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(m for m in {list(MEDIA_LIBRARIES)!r} if m in sys.modules)))"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(output))


@pytest.mark.parametrize(
    "handler", ["functions.handlers.api", "functions.handlers.finalize_on_put", "functions.handlers.sweeper"]
)
def test_handlers_without_the_media_layer_do_not_import_it(handler):
    assert imported_by(handler) == set()


def test_the_processing_lanes_do_import_it():
    """The check above can see these imports at all: the tags, artwork and embeddings lanes load
    them when they run (the processing handler's import leaves them to those lanes)."""
    lanes = "functions.media.tags, functions.media.artwork, functions.media.embedding"
    assert imported_by(lanes) == set(MEDIA_LIBRARIES)


def test_the_cycle_check_finds_a_chain_back_and_a_self_import_but_not_a_diamond():
    from local.import_cycles import cycles

    chain = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(chain) == [["a", "b", "c"]]
    assert cycles({"x": {"x"}, "y": set()}) == [["x"]]
    diamond = {"top": {"left", "right"}, "left": {"bottom"}, "right": {"bottom"}, "bottom": set()}
    assert cycles(diamond) == []


def test_no_module_of_functions_or_local_imports_itself_back():
    from local.import_cycles import cycles, package_imports

    for package in ("functions", "local"):
        assert cycles(package_imports(package)) == [], package
