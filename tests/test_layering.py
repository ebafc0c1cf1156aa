"""The package's folders are its layers: imports point down, pure layers stay pure, nothing imports in a circle.

Layers (README, "Layout"): measure (0) <- views (1) <- engines, store, tiny (2) <- arena (3) <- ui, cli (4).
A module may import its own folder and any strictly lower layer; folders of one layer never import
each other. Each rule is proved by a mutant: a temporary module in a copy of the package that breaks
the rule must make its check fail.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "playground"
LAYERS = {
    "measure": 0,
    "views": 1,
    "procs": 1,  # process trees, for engines/ and quantize/ alike
    "engines": 2,
    "store": 2,
    "tiny": 2,
    "quantize": 2,
    "lmeval": 2,
    "arena": 3,
    "ui": 4,
    "cli": 4,  # playground/cli/ (one module per command) and playground/__main__.py
    "__init__": 0,  # playground/__init__.py: the package's docstring only
}
# What each pure layer must not pull in, even indirectly.
FORBIDDEN = {
    "measure": ["gradio", "httpx", "vllm", "pynvml", "psutil", "torch", "plotly"],
    "views": ["gradio", "httpx", "vllm", "pynvml", "psutil", "torch"],
}


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (cpu_shim is a sitecustomize for the engine, not a module)."""
    return {module_name(p, package): p for p in package.rglob("*.py") if "cpu_shim" not in p.parts}


def imports(path: Path, known: Iterable[str]) -> set[str]:
    """The package modules a file imports anywhere in it (function-local and TYPE_CHECKING imports too)."""
    names = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b.c when c is a module, else a name of a.b
            full = [f"{node.module}.{a.name}" for a in node.names]
            candidates = [f if f in names else node.module for f in full]
        else:
            continue
        found.update(c for c in candidates if c in names)
    return found


def graph(package: Path) -> dict[str, set[str]]:
    mods = modules(package)
    return {name: imports(path, mods) - {name} for name, path in mods.items()}


def folder(name: str) -> str:
    """The layer folder of a module; the top-level `cli` and `__main__` are one shell, the command line."""
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    return "cli" if parts[1] == "__main__" else parts[1]


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up a layer or sideways into another folder of the same layer."""
    bad = []
    for src, targets in edges.items():
        for dst in targets:
            a, b = folder(src), folder(dst)
            if dst == "playground" or a == b:
                continue
            if LAYERS[b] >= LAYERS[a]:
                bad.append(f"{src} (layer {LAYERS[a]}) imports {dst} (layer {LAYERS[b]})")
    return sorted(bad)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan): each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def heavy_imports(package: Path, layer: str) -> list[str]:
    """Forbidden libraries present after importing every module of a pure layer, in a fresh interpreter."""
    names = sorted(n for n in modules(package) if folder(n) == layer)
    code = (
        "import json, sys\n"
        + "".join(f"import {n}\n" for n in names)
        + f"print(json.dumps([m for m in {FORBIDDEN[layer]!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=package.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package.parent)},
    )
    return list(json.loads(out.stdout))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package to plant mutants in."""
    target = tmp_path / "playground"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def unlayered(package: Path) -> list[str]:
    """Modules in a folder that has no layer, and folders without a docstring saying what they hold."""
    bad = [f"{n}: no layer" for n in modules(package) if folder(n) not in LAYERS]
    inits = package.glob("*/__init__.py")
    bad += [f"{i.parent.name}: no docstring" for i in inits if not ast.get_docstring(ast.parse(i.read_text()))]
    return sorted(bad)


def test_every_folder_has_a_layer_and_a_docstring() -> None:
    assert unlayered(PACKAGE) == []


def test_every_folder_is_packaged_and_in_the_readme_layout() -> None:
    folders = sorted(i.parent.name for i in PACKAGE.glob("*/__init__.py"))
    packaged = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert sorted(packaged) == sorted(["playground", *(f"playground.{f}" for f in folders)])
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    assert [f for f in folders if f"\n  {f}/ " not in layout] == []


def test_no_module_over_400_lines() -> None:
    """Small files a reader can hold (STYLE.md): a module past 400 lines is split, by composition."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 400} == {}


def test_imports_point_down() -> None:
    assert layer_violations(graph(PACKAGE)) == []


def test_no_import_circles() -> None:
    assert circles(graph(PACKAGE)) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_pure_layers_import_nothing_heavy(layer: str) -> None:
    assert heavy_imports(PACKAGE, layer) == []


def test_importing_the_ui_builds_nothing() -> None:
    code = "import playground.ui.app, gradio; print(gradio.context.Context.root_block is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "True"


# -- mutants: each rule must catch a module that breaks it ---------------------------------------------------
@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        (
            "measure/_mutant.py",
            "from playground.arena.core import Arena\n",
            "playground.measure._mutant (layer 0) imports playground.arena.core (layer 3)",
        ),
        (
            "engines/_mutant.py",
            "def f():\n    from playground.ui import app\n",  # function-local imports count too
            "playground.engines._mutant (layer 2) imports playground.ui.app (layer 4)",
        ),
        (
            "store/_mutant.py",
            "import playground.engines.client\n",  # sideways: same layer, another folder
            "playground.store._mutant (layer 2) imports playground.engines.client (layer 2)",
        ),
    ],
)
def test_mutant_upward_or_sideways_import_is_caught(copy: Path, where: str, source: str, expected: str) -> None:
    (copy / where).write_text(source)
    assert expected in layer_violations(graph(copy))


def test_mutant_import_circle_is_caught(copy: Path) -> None:
    (copy / "arena" / "_mutant_a.py").write_text("from playground.arena import _mutant_b\n")
    type_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from playground.arena._mutant_a import x\n"
    (copy / "arena" / "_mutant_b.py").write_text(type_only)
    assert circles(graph(copy)) == [["playground.arena._mutant_a", "playground.arena._mutant_b"]]
    # a circle inside one folder breaks no layer: only the circle check sees it
    assert layer_violations(graph(copy)) == []


@pytest.mark.parametrize(("layer", "library"), [("measure", "psutil"), ("measure", "plotly"), ("views", "httpx")])
def test_mutant_heavy_import_in_a_pure_layer_is_caught(copy: Path, layer: str, library: str) -> None:
    (copy / layer / "_mutant.py").write_text(f"import {library}\n")
    assert library in heavy_imports(copy, layer)


def test_mutant_folder_outside_any_layer_is_caught(copy: Path) -> None:
    (copy / "helpers").mkdir()
    (copy / "helpers" / "__init__.py").write_text("import os\n")
    assert unlayered(copy) == ["helpers: no docstring", "playground.helpers: no layer"]
