"""The README's layer rule, enforced: every ``chimein`` import, module-level or inside a function.

A module may import its own layer and the layers below it, never a higher one, and no two of
chimein's modules may reach each other through imports (no import circles). The layer table is
the README's architecture section (``README.md`` -> "Architecture"); :data:`LAYERS` mirrors it and
:func:`test_readme_layer_table_matches` keeps the two in step.

Imports are read with :mod:`ast`, so nothing is imported to check them, and an import hidden
inside a function counts exactly like one at the top of the file. ``from chimein.x import y``
depends on ``chimein.x`` (its ``__init__`` runs first) and on ``chimein.x.y`` when that is a
module; ``import chimein.x.y as y`` depends on ``chimein.x.y`` alone. The same rules as the
team's ``shared/tools/layers.py``, without its exemption for a package face and one submodule.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chimein"

#: (module prefix, layer): the longest matching prefix decides; a module without one is an error.
LAYERS: tuple[tuple[str, int], ...] = (
    ("chimein", 0),  # the package face: the version only
    ("chimein._version", 0),
    ("chimein.errors", 0),
    ("chimein.config", 0),
    ("chimein.io", 0),
    ("chimein.exec", 0),
    ("chimein.scenes", 1),
    ("chimein.envs", 2),
    ("chimein.agents", 3),
    ("chimein.eval", 4),
    ("chimein.training", 4),
    ("chimein.cli", 5),
)

#: Same-layer imports that are not allowed (training may use evaluation for validation; evaluation
#: never imports training).
FORBIDDEN_SAME_LAYER: tuple[tuple[str, str], ...] = (("chimein.eval", "chimein.training"),)


@dataclass(frozen=True)
class Import:
    """One import statement's dependency: ``src`` imports ``dst`` at ``path:line``."""

    src: str
    dst: str
    path: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text}"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module}: no layer in tests/test_layers.py LAYERS; add it (and to the README)")
    return dict(LAYERS)[best]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The chimein module that ``name`` (a module or a name inside one) belongs to."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """Every chimein import in ``path``, at any depth (functions, classes, ``if`` blocks)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # ``from pkg import sub`` runs pkg/__init__ first: it depends on both
            names = [mod] + [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "chimein":
                continue
            dst = _resolve(name, modules)
            if dst is not None and dst != module:
                yield Import(module, dst, path, node.lineno, lines[node.lineno - 1].strip())


def all_imports() -> list[Import]:
    modules = all_modules()
    return [imp for m, p in modules.items() for imp in imports_of(m, p, modules)]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------
def test_every_module_has_a_layer() -> None:
    for m in all_modules():
        layer_of(m)


def test_no_import_goes_up_a_layer() -> None:
    bad = []
    for imp in all_imports():
        src, dst = layer_of(imp.src), layer_of(imp.dst)
        if dst > src:
            bad.append(f"{imp.where()}  ({imp.src}, layer {src} -> {imp.dst}, layer {dst})")
        for a, b in FORBIDDEN_SAME_LAYER:
            if imp.src.startswith(a + ".") and (imp.dst == b or imp.dst.startswith(b + ".")):
                bad.append(f"{imp.where()}  ({a} must not import {b})")
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_no_import_circles() -> None:
    edges: dict[str, set[str]] = {}
    first: dict[tuple[str, str], Import] = {}
    for imp in all_imports():
        edges.setdefault(imp.src, set()).add(imp.dst)
        first.setdefault((imp.src, imp.dst), imp)
    found = cycles(edges)
    msg = []
    for comp in found:
        inside = set(comp)
        msg.append("circle among " + ", ".join(comp) + ":")
        msg += [f"    {first[(a, b)].where()}" for a in comp for b in sorted(edges[a] & inside)]
    assert not found, "\n".join(msg)


def test_package_face_is_only_the_version() -> None:
    """``import chimein`` loads nothing but the version (no Gymnasium, no torch)."""
    imps = [i for i in all_imports() if i.src == "chimein"]
    assert [i.dst for i in imps] == ["chimein._version"], [i.where() for i in imps]


def test_readme_layer_table_matches() -> None:
    """The README's layer table names the same packages at the same layers as :data:`LAYERS`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture"):]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| (\d) \| (.+?) \|", section, flags=re.M)
    assert rows, "README.md: no layer table under '## Architecture'"
    readme: dict[str, int] = {}
    for layer, cell in rows:
        for path in re.findall(r"`(chimein/[\w/{},.]+?)`", cell):
            for mod in _expand(path):
                readme[mod] = int(layer)
    ours = {p: layer for p, layer in LAYERS if p != "chimein"}
    assert readme == ours, f"README layer table {sorted(readme.items())} != LAYERS {sorted(ours.items())}"


def _expand(path: str) -> list[str]:
    """``chimein/{errors,io}.py`` -> [chimein.errors, chimein.io]; ``chimein/exec/`` -> [chimein.exec]."""
    m = re.match(r"(.*)\{(.+)\}(.*)", path)
    paths = [m.group(1) + x + m.group(3) for x in m.group(2).split(",")] if m else [path]
    return [p.rstrip("/").removesuffix(".py").replace("/", ".") for p in paths]


# ---------------------------------------------------------------------------------------------
# The checker itself can fail
# ---------------------------------------------------------------------------------------------
def test_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    src = "def f():\n    from chimein.eval.runner import evaluate\n    import chimein.cli.main\n"
    p = PACKAGE / "scenes" / "_probe.py"
    modules = {"chimein.scenes._probe": p, "chimein.eval.runner": p, "chimein.cli.main": p, "chimein.cli": p}
    path = tmp_path / "chimein" / "scenes" / "_probe.py"
    path.parent.mkdir(parents=True)
    path.write_text(src)
    found = list(imports_of("chimein.scenes._probe", path, modules))
    assert [(i.dst, i.line) for i in found] == [("chimein.eval.runner", 2), ("chimein.cli.main", 3)]
    assert all(layer_of(i.dst) > layer_of(i.src) for i in found)


def test_from_package_import_submodule_depends_on_the_package(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("from chimein.cli import main\nimport chimein.cli.main as m2\n")
    modules = {"chimein.scenes.m": path, "chimein.cli": path, "chimein.cli.main": path}
    found = [(i.dst, i.line) for i in imports_of("chimein.scenes.m", path, modules)]
    assert found == [("chimein.cli", 1), ("chimein.cli.main", 1), ("chimein.cli.main", 2)]


def test_checker_finds_circles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module,layer", [("chimein.exec.pool", 0), ("chimein.scenes.events.alarms", 1),
                                          ("chimein.agents.lm.decoder", 3), ("chimein.cli.eval", 5)])
def test_layer_lookup(module: str, layer: int) -> None:
    assert layer_of(module) == layer
