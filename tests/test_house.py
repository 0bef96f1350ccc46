"""The layout of the house: ``train`` is the ground floor, imports run one way, each default lives in one place."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "medr1_app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [p for package in (*PACKAGES, "benchmarks") for p in (ROOT / package).rglob("*.py")]
    files.append(ROOT / "app.py")
    return {module_name(p): p for p in files if "__pycache__" not in p.parts}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (lazy imports inside functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # "from pkg import sub" imports the submodule when there is one, else a name from pkg.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def test_no_import_cycle_among_the_projects_modules():
    modules = project_modules()
    known = set(modules)
    graph = {name: imports_of(name, path, known) for name, path in modules.items()}
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert graph["medr1_app.app"], "the import graph was not read"
    assert cycles == []


def test_train_never_imports_the_app():
    modules = project_modules()
    known = set(modules)
    upward = {
        name: sorted(t for t in imports_of(name, path, known) if t.startswith("medr1_app"))
        for name, path in modules.items()
        if name.split(".")[0] == "train"
    }
    assert {k: v for k, v in upward.items() if v} == {}


def test_importing_every_module_of_train_imports_neither_gradio_nor_the_app():
    code = (
        "import importlib, json, pkgutil, sys, train\n"
        "names = [m.name for m in pkgutil.walk_packages(train.__path__, 'train.') if not m.name.endswith('__main__')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(json.dumps({'imported': len(names), 'loaded': sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('gradio', 'gradio_client', 'medr1_app'))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["imported"] >= 30 and report["loaded"] == []


def package_code() -> dict[Path, str]:
    return {p: p.read_text() for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def test_med_r1_pixel_bound_and_the_patch_size_are_written_once():
    literal = re.compile(r"\b401_?408\b")
    places = [str(p.relative_to(ROOT)) for p, text in package_code().items() for _ in literal.findall(text)]
    assert places == ["train/imaging/model_input.py"]
    patch = re.compile(r"\b28\s*\*\s*28\b|\bPATCH\s*=\s*28\b|factor\s*=\s*28\b")
    places = [str(p.relative_to(ROOT)) for p, text in package_code().items() for _ in patch.findall(text)]
    assert places == ["train/imaging/model_input.py"]


def test_the_fine_tune_tab_types_no_training_default_of_its_own():
    """Its widgets start from the CLI's dataclasses and the tab's recipe: no LoRA rank, beta or lr literal."""
    text = (ROOT / "medr1_app" / "ui_finetune.py").read_text()
    for literal in ("0.04", "1e-5", "1e-05", "value=64", "128, precision", "401"):
        assert literal not in text, literal


def test_assets_are_listed_with_their_source_and_licence():
    assets = ROOT / "assets"
    readme = (assets / "README.md").read_text()
    files = [p for p in assets.rglob("*") if p.is_file() and p.name != "README.md" and p.parent == assets]
    assert files, "assets/ holds the gallery and demo files"
    for path in files:
        assert path.name in readme, f"{path.name} is not described in assets/README.md"
    assert "Licence" in readme or "licence" in readme


def test_readme_is_a_short_guide_with_its_two_commands_first():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) < 15_000
    body = text.split("---", 2)[2]  # after the Space front matter
    blocks = re.findall(r"```bash\n(.*?)```", body, re.S)
    assert "medr1-app" in blocks[0] and "pytest" in blocks[1]
    assert body.index(blocks[1]) < body.index("## ")
    for page in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / page).is_file(), page
