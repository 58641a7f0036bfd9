"""The import graph of nasx/: no circle, and every import points down the layers (STYLE.md):
spec → data/stats → build/complexity/zoo → space/train → study.record → study → experiments/report → cli."""

from __future__ import annotations

import ast
from pathlib import Path

import nasx

ROOT = Path(nasx.__file__).resolve().parent
# module (dotted, under nasx) -> layer; a higher number is a higher floor
LAYERS = {
    "errors": 0, "units": 0, "net.spec": 0, "net.fit": 0,
    "data.dataset": 1, "data.formats": 1, "data.cache": 1, "data.sources": 1, "data.loading": 1,
    "stats.pareto": 1, "stats.edf": 1, "stats.rank": 1, "stats.intervals": 1, "stats.noise": 1, "stats.shift": 1,
    "net.build": 2, "net.complexity": 2, "net.zoo": 2, "net.verify": 2, "net.regnet": 2,
    "space.parse": 3, "space.sampling": 3, "space.edit": 3, "train.budget": 3, "train.trainer": 3, "train.cores": 3, "train.bench": 3, "train.memory": 3,
    "study.record": 4, "study.rungs": 4, "study.journal": 4, "study.checkpoints": 5,
    "study.prune": 5, "study.config": 5, "study.storage": 5, "study.progress": 5, "study.worker": 5,
    "study.run": 5, "study.references": 5, "study.explore": 5, "study.fixed": 5, "study.repeat": 5, "study.store": 5,
    "experiments.ablate": 6, "experiments.compare": 6, "experiments.fidelity": 6, "experiments.refine": 6, "experiments.refine_calibration": 6, "experiments.schedule": 6, "report.tables": 6, "report.figures": 6, "report.page": 6,
    "report.ablation": 6, "report.fidelity": 6, "report.refine": 6, "experiments.simulate": 6, "experiments.planted_fit": 6, "report.simulate": 6, "report.repeats": 6,
    "cli.common": 7, "cli.net": 7, "cli.space": 7, "cli.train": 7, "cli.explore": 7, "cli.report": 7,
    "cli.ablate": 7, "cli.compare": 7, "cli.fidelity": 7, "cli.refine": 7, "cli.simulate": 7, "cli.repeat": 7, "cli.app": 7,
    "study.synthetic": 5,  # a study of made-up results (tests, examples, runs at scale)
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """nasx modules imported by the file (relative or absolute), resolved to dotted names under nasx."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                target = [p for p in base if p] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("nasx"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                candidate = ".".join(target + [alias.name])
                out.add(candidate if (ROOT / (candidate.replace(".", "/") + ".py")).exists()
                        or (ROOT / candidate.replace(".", "/")).is_dir() else ".".join(target))
        elif isinstance(node, ast.Import):
            out.update(a.name[5:] for a in node.names if a.name.startswith("nasx."))
    return {m for m in out if m}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in ROOT.rglob("*.py") if module_name(p)}


def test_every_module_has_a_layer():
    faces = {m for m in graph() if (ROOT / m.replace(".", "/")).is_dir()} | {"__main__"}
    assert set(graph()) - faces == set(LAYERS), "add new modules to LAYERS"


def test_imports_point_down_the_layers():
    up = []
    for module, targets in graph().items():
        if module not in LAYERS:
            continue  # package faces (__init__) re-export their own modules
        for target in targets:
            if target in LAYERS and LAYERS[target] > LAYERS[module]:
                up.append(f"{module} (layer {LAYERS[module]}) imports {target} (layer {LAYERS[target]})")
    assert not up, up


def test_no_import_circle():
    g = {m: {t for t in ts if t in LAYERS} for m, ts in graph().items() if m in LAYERS}
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in sorted(g.get(m, ())):
            visit(t)
        stack.pop()

    for m in sorted(g):
        visit(m)
    assert not cycles, cycles


def test_lazy_faces_show_type_checkers_every_public_name():
    """A package face that imports its names on first use (PEP 562) imports each of them under `if TYPE_CHECKING:`
    too (or at once), so that type checkers and editors see all of `__all__`."""
    import importlib

    faces = [p for p in ROOT.rglob("__init__.py") if "def __getattr__" in p.read_text()]
    assert {module_name(p) or "nasx" for p in faces} >= {"nasx", "study", "train"}
    for path in faces:
        seen = set()
        for node in ast.parse(path.read_text()).body:
            checking = isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
            for stmt in node.body if checking else [node]:
                if isinstance(stmt, ast.ImportFrom) and stmt.module != "__future__" and stmt.module != "typing":
                    seen.update(a.asname or a.name for a in stmt.names)
        module = importlib.import_module(".".join(filter(None, ["nasx", module_name(path)])))
        assert set(module.__all__) <= seen, f"{path.relative_to(ROOT)}: {sorted(set(module.__all__) - seen)}"


def test_library_code_changes_no_process_wide_module_table():
    """No nasx module writes into or deletes from sys.modules (an import hidden from other threads, a module
    replaced under a notebook's feet): the report imports Optuna's importance package as it is."""
    import re

    root = Path(__file__).resolve().parents[1] / "nasx"
    writes = re.compile(r"sys\.modules\[[^\]]+\]\s*=[^=]|del\s+sys\.modules|sys\.modules\.(pop|update|setdefault)\(")
    found = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1) if writes.search(line)]
    assert found == []
