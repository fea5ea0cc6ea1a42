"""Module and function sizes a newcomer can read: no module over 800 lines in ``chimein/``, no
function over 120 lines in ``chimein/training`` and ``chimein/eval`` (where the long loops live;
a long one is split into named phases)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chimein"
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 120
FUNCTION_RULE_PACKAGES = ("training", "eval")


def test_no_module_over_800_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {long}"


def long_functions(path: Path, limit: int) -> list[str]:
    """``path:line name (n lines)`` for every function or method longer than ``limit`` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return [f"{where}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno is not None and n.end_lineno - n.lineno + 1 > limit]


def test_no_function_over_120_lines_in_training_and_eval() -> None:
    long = [f for pkg in FUNCTION_RULE_PACKAGES for p in sorted((PACKAGE / pkg).rglob("*.py"))
            for f in long_functions(p, MAX_FUNCTION_LINES)]
    assert not long, "functions to split into named phases:\n" + "\n".join(long)


def test_the_size_check_can_fail(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(130))
    p = tmp_path / "probe.py"
    p.write_text(f"def f():\n{body}\n\n\ndef g():\n    return 1\n")
    assert long_functions(p, MAX_FUNCTION_LINES) == ["probe.py:1 f (131 lines)"]
