"""Architecture rules: the core never imports the UI libraries; pages only render."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_LIBS = {"streamlit", "plotly", "streamlit_authenticator", "extra_streamlit_components"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_core_never_imports_ui_libraries():
    core = [p for p in (ROOT / "secdash").rglob("*.py") if "ui" not in p.relative_to(ROOT / "secdash").parts[:1]]
    assert core, "no core modules found"
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & UI_LIBS) for p in core}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"core modules importing UI libraries: {offenders}"


def test_pages_do_not_reach_into_storage_or_parsing_directly():
    """Pages render; data access goes through secdash.ui wrappers (cached, gated)."""
    pages = list((ROOT / "pages").glob("*.py"))
    for p in pages:
        imported = _imports(p)
        assert "duckdb" not in imported and "polars" not in imported, f"{p.name} imports a data engine"
