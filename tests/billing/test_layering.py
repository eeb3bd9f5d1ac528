"""Billing's floors, read from the source: no import cycle inside billing, the
ledger below suspension below the crediting services, selectors below
services, and no import tucked inside a function (in billing and /metrics)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BILLING = ROOT / "billing"
# Django imports apps.py before any model; services can be imported only in ready().
FUNCTION_IMPORTS_ALLOWED = {("billing/apps.py", "ready")}


def _sources():
    return sorted(p for p in BILLING.rglob("*.py") if "migrations" not in p.parts)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    module = _module(path)
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _module_level_imports(path: Path, known: set[str]) -> set[str]:
    """The billing modules ``path`` imports when it is loaded (not those inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package(path).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known}


def _graph() -> dict[str, set[str]]:
    known = {_module(p) for p in _sources()}
    return {_module(p): _module_level_imports(p, known) for p in _sources()}


def _reaches(graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_no_import_cycle_inside_billing():
    graph = _graph()
    assert len(graph) > 30
    assert [module for module in graph if module in _reaches(graph, module)] == []


def test_floors_ledger_then_suspension_then_the_crediting_services():
    graph = _graph()
    ledger = _reaches(graph, "billing.services.ledger")
    assert not ledger & {f"billing.services.{m}" for m in ("suspension", "wallet", "charging", "invoices")}
    assert "billing.services.ledger" in graph["billing.services.suspension"]
    assert not _reaches(graph, "billing.services.suspension") & {"billing.services.wallet", "billing.services.invoices"}
    for crediting in ("billing.services.wallet", "billing.services.invoices"):
        assert "billing.services.suspension" in graph[crediting]
    assert not any(m.startswith("billing.services") for m in _reaches(graph, "billing.selectors"))


def _function_imports(path: Path):
    def walk(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, child.name)
            elif isinstance(child, ast.Import | ast.ImportFrom) and function:
                yield function, child.lineno
            else:
                yield from walk(child, function)

    yield from walk(ast.parse(path.read_text()), None)


def test_no_import_inside_a_function_in_billing_or_metrics():
    found = [
        f"{path.relative_to(ROOT)}:{line} in {function}()"
        for path in [*_sources(), ROOT / "controlplane" / "metrics.py"]
        for function, line in _function_imports(path)
        if (str(path.relative_to(ROOT)), function) not in FUNCTION_IMPORTS_ALLOWED
    ]
    assert found == []
    assert list(_function_imports(BILLING / "apps.py"))  # the walk does see imports in functions
