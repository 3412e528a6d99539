"""A block of a hand-written markdown file that code generates: it sits between two marker lines,
and a unit test compares it with what the generator renders now, so it cannot go stale.

Each generator (``local.config_doc``, ``local.access_doc``) declares one ``GeneratedBlock`` and
gets the same ``--write`` / ``--check`` command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local.config import CHECKOUT


@dataclass(frozen=True)
class GeneratedBlock:
    doc: Path
    start: str
    end: str
    render: Callable[[], str]
    module: str  # "local.config_doc": how the regeneration hint and --help name the command

    @property
    def regenerate(self) -> str:
        return f"run `.venv/bin/python -m {self.module} --write` (or `make docs`) and commit {self.relative_doc}"

    @property
    def relative_doc(self) -> Path:
        return self.doc.relative_to(CHECKOUT)

    def documented(self, text: str) -> str:
        """The block between the markers in ``text``; ValueError when the markers are missing."""
        if self.start not in text or self.end not in text:
            raise ValueError(f"{self.doc.name} lost its generated-block markers ({self.start} ... {self.end})")
        return text.split(self.start, 1)[1].split(self.end, 1)[0].strip("\n")

    def rewritten(self, text: str) -> str:
        """``text`` with its generated block replaced by what the generator renders now."""
        self.documented(text)
        before, rest = text.split(self.start, 1)
        after = rest.split(self.end, 1)[1]
        return f"{before}{self.start}\n{self.render()}\n{self.end}{after}"

    def main(self, argv: list[str] | None, description: str) -> int:
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}", description=description)
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--write", action="store_true", help=f"update {self.relative_doc} in place")
        action.add_argument("--check", action="store_true", help=f"fail when {self.relative_doc} is stale")
        args = parser.parse_args(argv)
        if not (args.write or args.check):
            print(self.render())
            return 0
        current = self.doc.read_text(encoding="utf-8")
        wanted = self.rewritten(current)
        if args.check:
            if wanted != current:
                print(f"{self.relative_doc} is out of date: {self.regenerate}", file=sys.stderr)
                return 1
            return 0
        if wanted != current:
            self.doc.write_text(wanted, encoding="utf-8")
        return 0
