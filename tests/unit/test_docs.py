"""The documentation says what the code does: every file, module and link it names exists, the
generated configuration tables are what the settings declare, and every error code is explained.

When one of these fails after code moved, fix the doc (or regenerate it), not the test."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from local import config_doc

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# Where the project's own code lives: a path or dotted module under these must exist.
CODE_ROOTS = ("functions", "local", "stacks")

# `functions/domain/intake/finalize.py`, `local/`, `stacks/constructs/api.py` ... (not `tracks/{id}/`,
# not the end of a URL or of another path).
PATH = re.compile(rf"(?<![\w./{{}}-])(?:{'|'.join(CODE_ROOTS)})/[\w./-]*")
# `functions.workflow.definition`, `functions.settings.settings()`, `local.runner` ...
DOTTED = re.compile(rf"(?<![\w./-])(?:{'|'.join(CODE_ROOTS)})(?:\.\w+)+")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")


def _name(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def _prose(text: str) -> str:
    """The text outside fenced code blocks (whose `#` lines are comments, not headings)."""
    return FENCE.sub("", text)


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lowercased, markup and punctuation dropped (letters,
    digits, spaces, `-` and `_` stay), spaces become hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    kept = "".join(char for char in text if char in " -_" or unicodedata.category(char)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(doc.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def test_the_docs_are_where_the_readme_says():
    assert {_name(doc) for doc in DOCS} >= {
        "README.md",
        "docs/api.md",
        "docs/architecture.md",
        "docs/configuration.md",
        "docs/contracts.md",
        "docs/local-stack.md",
    }


def test_the_readme_stays_a_front_page():
    # What tracklane is, the commands, the walk-through and a map; the detail lives in docs/.
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 10 * 1024, f"README.md is {size} bytes: move the detail into docs/ and link to it"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_code_path_a_doc_names_exists(doc: Path):
    text = doc.read_text(encoding="utf-8")
    named = {match.rstrip(".,:;") for match in PATH.findall(text)}
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{_name(doc)} names paths that do not exist in the repository: {missing}"


def _module_exists(parts: list[str]) -> bool:
    return (ROOT.joinpath(*parts).with_suffix(".py")).is_file() or (ROOT.joinpath(*parts) / "__init__.py").is_file()


def _dotted_exists(dotted: str) -> bool:
    """The longest module prefix exists, and what follows it (at most a name and its attribute) is
    defined or assigned in that module."""
    parts = dotted.split(".")
    for length in range(len(parts), 0, -1):
        if _module_exists(parts[:length]):
            rest = parts[length:]
            if not rest:
                return True
            if len(rest) > 2:
                return False
            path = ROOT.joinpath(*parts[:length])
            source = (
                path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
            ).read_text()
            return (
                re.search(rf"^\s*(?:def|class)\s+{rest[0]}\b|^\s*{rest[0]}\b\s*[:=]", source, re.MULTILINE) is not None
            )
    return False


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_module_a_doc_names_exists(doc: Path):
    text = doc.read_text(encoding="utf-8")
    named = {match.rstrip(".") for match in DOTTED.findall(text)}
    missing = sorted(dotted for dotted in named if not _dotted_exists(dotted))
    assert not missing, f"{_name(doc)} names modules or names that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_relative_link_resolves(doc: Path):
    text = INLINE_CODE.sub("", _prose(doc.read_text(encoding="utf-8")))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, fragment = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        if not linked.exists():
            broken.append(f"{target} (no file {path_part})")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target} (no heading in {_name(linked)} gives #{fragment})")
    assert not broken, f"{_name(doc)} has broken links: {broken}"


def test_github_anchors_drop_punctuation_and_markup_as_github_does():
    assert github_anchor("Processing failures (track `failure.code`, lane `code`)") == (
        "processing-failures-track-failurecode-lane-code"
    )
    assert github_anchor("Walk-through: the upload-intent flow") == "walk-through-the-upload-intent-flow"
    assert github_anchor("upload_track contract") == "upload_track-contract"


def test_the_configuration_doc_is_generated_from_the_settings():
    current = config_doc.DOC.read_text(encoding="utf-8")
    assert config_doc.documented(current) == config_doc.render(), (
        f"docs/configuration.md is stale: {config_doc.REGENERATE}"
    )


def test_every_cdk_context_key_the_stack_reads_or_sets_is_documented():
    # What the code reads (StackConfig.from_context's get("..."), the app's try_get_context("..."))
    # and what cdk.json sets, except the CDK's own feature flags and CLI settings.
    from stacks.config import cdk_json_context

    read = set()
    for source in (ROOT / "stacks").rglob("*.py"):
        read |= set(re.findall(r"(?:\bget|try_get_context)\(\"(\w+)\"\)", source.read_text()))
    configured = {key for key in cdk_json_context() if not key.startswith("@") and key != "cli-telemetry"}
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    context_section = doc.split("## CDK context", 1)[1]
    undocumented = sorted(key for key in read | configured if f"`{key}`" not in context_section)
    assert not undocumented, f"docs/configuration.md's CDK context section does not list: {undocumented}"


# Codes that never reach a client: a lane result dropped before it is recorded, and a step name
# only a broken deployment could send.
NEVER_ANSWERED = frozenset({"version_discarded", "unknown_step"})


CODE_PATTERNS = (
    r"^\s+code(?::[^=\n]+)? = \"(\w+)\"",  # a DomainError class
    r"error_body\(\s*\"(\w+)\"",  # an error the API maps itself
    r"(?:StepFailed|LaneSkipped)\(\s*\"(\w+)\"",  # a lane failure or skip
    r"\bcode=\"(\w+)\"",  # a code passed by keyword (a lane closed by the verdict or the sweeper)
    r"\"code\": \"(\w+)\"",  # a code written into a JSON answer
)


def _codes_in_code() -> set[str]:
    codes: set[str] = set()
    for source in (ROOT / "functions").rglob("*.py"):
        text = source.read_text()
        for pattern in CODE_PATTERNS:
            codes |= set(re.findall(pattern, text, re.MULTILINE))
    return codes - NEVER_ANSWERED


def test_every_error_and_lane_code_is_explained_in_the_api_doc():
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    codes = _codes_in_code()
    assert {"upload_asset_invalid", "audio_truncated", "not_configured", "validation_failed"} <= codes
    unexplained = sorted(code for code in codes if not re.search(rf"`[^`]*\b{code}\b[^`]*`", api))
    assert not unexplained, f"docs/api.md does not explain these codes: {unexplained}"


def test_the_route_access_table_is_generated_from_the_routes():
    from local import access_doc

    current = access_doc.DOC.read_text(encoding="utf-8")
    assert access_doc.documented(current) == access_doc.render(), f"docs/api.md is stale: {access_doc.REGENERATE}"
