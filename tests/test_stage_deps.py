"""Each dvc.yaml stage's code deps are exactly its module and the project modules it imports.

DVC re-runs a stage when one of its ``deps`` changes, so a module that a stage runs but does not
list hides a change (the stage is not re-run), and a module it lists but never runs re-runs it
for nothing (a retrain of tens of minutes). The imports are read with ``ast`` (every ``import``
anywhere in a module, functions included), followed transitively through the project.
"""

import ast
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"
# Modules a stage imports that hold no behaviour its outputs depend on.
EXEMPT = {
    # package markers: a docstring, no code
    "pipeline/__init__.py": "package docstring only",
    "pipeline/stages/__init__.py": "package docstring only",
}


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (``pipeline.x.y``), or None outside the project."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] != "__init__" else parts[:-1])


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, absolute names; ``from a import b`` gives a and a.b."""
    found = set()
    package = _package_of(path, root)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    return found | {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}


def project_closure(start: Path, root: Path = ROOT) -> set[str]:
    """Paths (relative, posix) of ``start`` and every project module it imports, transitively."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in imported_modules(path, root):
            found = module_file(module, root)
            if found is not None:
                todo.append(found)
    return {p.relative_to(root).as_posix() for p in seen}


def stage_module(cmd: str) -> str:
    """The module a stage's ``cmd`` runs: ``raman-baseline [--params P] <command> ...``."""
    words = shlex.split(cmd)
    assert words[0] == "raman-baseline", f"a stage runs raman-baseline, not {words[0]}"
    command = next(w for w in words[1:] if not w.startswith("-") and not w.endswith(".yaml"))
    return f"{PACKAGE}.stages.{command.replace('-', '_')}"


def disagreements(stages: dict, root: Path = ROOT) -> dict[str, dict[str, set[str]]]:
    """Per stage, the code deps dvc.yaml ``missing`` and those it lists but never runs."""
    out = {}
    for name, stage in stages.items():
        module = module_file(stage_module(stage["cmd"]), root)
        assert module is not None, f"{name}: no module for {stage['cmd']!r}"
        code = project_closure(module, root) - set(EXEMPT)
        listed = {d for d in stage.get("deps", []) if d.endswith(".py")}
        missing, extra = code - listed, listed - code
        if missing or extra:
            out[name] = {"missing": missing, "extra": extra}
    return out


@pytest.fixture(scope="module")
def stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_lists_exactly_the_code_it_runs(stages):
    assert disagreements(stages) == {}


def test_every_stage_has_its_own_module_named_after_it(stages):
    for name, stage in stages.items():
        assert stage_module(stage["cmd"]) == f"{PACKAGE}.stages.{name}", name
        assert module_file(f"{PACKAGE}.stages.{name}") is not None, name
    files = {p.stem for p in (ROOT / PACKAGE / "stages").glob("*.py")}
    assert set(stages) == {f for f in files if not f.startswith("_")}


def test_a_removed_dep_is_found(stages):
    train = dict(stages["train"])
    train["deps"] = [d for d in train["deps"] if d != "pipeline/model.py"]
    assert disagreements({"train": train}) == {
        "train": {"missing": {"pipeline/model.py"}, "extra": set()}
    }


def test_an_added_dep_is_found(stages):
    simulate = dict(stages["simulate"])
    simulate["deps"] = [*simulate["deps"], "pipeline/inference.py"]
    assert disagreements({"simulate": simulate}) == {
        "simulate": {"missing": set(), "extra": {"pipeline/inference.py"}}
    }


def test_exempt_modules_hold_no_code():
    for name, reason in EXEMPT.items():
        tree = ast.parse((ROOT / name).read_text())
        body = [n for n in tree.body if not isinstance(n, ast.Expr)]  # the docstring
        assert body == [], f"{name} is exempt ({reason}) but holds code"


def test_imports_are_followed_through_packages_and_functions(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""doc"""\n')
    (pkg / "sub" / "__init__.py").write_text("from pipeline.sub import inner\n")
    (pkg / "sub" / "inner.py").write_text("def f():\n    from pipeline import leaf\n")
    (pkg / "leaf.py").write_text("import numpy\n")
    (pkg / "start.py").write_text("from pipeline import sub\n")
    assert project_closure(pkg / "start.py", tmp_path) == {
        "pipeline/__init__.py",
        "pipeline/start.py",
        "pipeline/sub/__init__.py",
        "pipeline/sub/inner.py",
        "pipeline/leaf.py",
    }
