"""compute never imports workers: it publishes tasks by name (compute/dispatch.py), and the
engine in workers/ calls compute's services. Any import, at any depth, would break that."""

import ast
from pathlib import Path

import compute


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_compute_never_imports_workers():
    root = Path(compute.__file__).parent
    offenders = [
        f"{path.relative_to(root.parent)} imports {module}"
        for path in sorted(root.rglob("*.py"))
        for module in _imported_modules(path)
        if module == "workers" or module.startswith("workers.")
    ]
    assert offenders == []
