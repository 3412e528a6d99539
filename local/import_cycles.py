"""No module of a package may import itself back, however long the chain (``make lint``).

import-linter's contracts order the layers; this catches what they cannot see: two modules of one
layer (or one package) importing each other, directly or through others. Function-level imports
count: a lazy import only hides a cycle until the function runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

import grimp


def cycles(imports: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every group of modules that reach each other (strongly connected components of more than
    one module, or one that imports itself), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        # Iterative Tarjan: a deep import chain must not hit the recursion limit.
        nonlocal counter
        work = [(start, iter(sorted(imports.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            module, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(imports.get(target, ())))))
                    advanced = True
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1 or module in imports.get(module, ()):
                    found.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return sorted(found)


def package_imports(package: str) -> dict[str, set[str]]:
    graph = grimp.build_graph(package, include_external_packages=False)
    return {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}


def main(argv: list[str] | None = None) -> int:
    packages = (argv if argv is not None else sys.argv[1:]) or ["functions"]
    status = 0
    for package in packages:
        for group in cycles(package_imports(package)):
            print(f"import cycle in {package}: {' <-> '.join(group)}")
            status = 1
    if status == 0:
        print(f"no import cycles in {', '.join(packages)}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
