"""The shape of the code itself: short functions with few positional parameters, modules of a readable size, concept
packages that import only the packages below them, and a run that imports only what its config needs."""
import ast
import subprocess
import sys

from tests.conftest import REPO

MAX_LINES, MAX_POSITIONAL, MAX_MODULE_LINES = 42, 6, 350
MODULES = sorted((REPO / "trainer").rglob("*.py"))
# What each concept package (or top-level module) may import from trainer besides itself and the shared modules every
# package uses (errors, logs, config, _lazy, safe_load, drawing): the packages below it. Nothing imports upward.
SHARED = {"errors", "logs", "config", "_lazy", "safe_load", "drawing"}
MAY_IMPORT = {
    "config": set(), "metrics": {"runtime"}, "runtime": set(),
    "data": {"metrics"}, "models": set(), "losses": {"metrics"}, "optim": {"metrics"},
    "run": {"data", "losses", "metrics", "optim", "runtime"},
    "sweep": {"metrics", "run"},
    "cli": {"metrics", "run", "sweep", "runtime"}, "__main__": {"cli"},
}


def functions():
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(REPO), node


def concept(name):
    """trainer.run.train -> "run"; trainer.cli -> "cli"."""
    return name.split(".")[1] if name.count(".") else None


def imported(path):
    """The trainer modules a module imports (at any depth of its code: a deferred import counts too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trainer"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("trainer"))


def test_every_function_in_trainer_is_short_and_takes_few_positional_parameters():
    too_long = [f"{name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)" for name, node in functions()
                if node.end_lineno - node.lineno + 1 > MAX_LINES]
    too_wide = [f"{name}:{node.name} ({len(node.args.posonlyargs + node.args.args)} positional)"
                for name, node in functions() if len(node.args.posonlyargs + node.args.args) > MAX_POSITIONAL]
    assert too_long == [] and too_wide == []


def test_no_module_in_trainer_is_longer_than_a_reader_can_hold():
    long = [f"{path.relative_to(REPO)} ({n} lines)" for path in MODULES
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert long == []


def test_every_concept_package_imports_only_the_packages_below_it():
    upward = []
    for path in MODULES:
        own = concept(".".join(path.relative_to(REPO).with_suffix("").parts).replace(".__init__", ""))
        for module in imported(path):
            other = concept(module)
            if other not in (None, own) and other not in SHARED and other not in MAY_IMPORT[own]:
                upward.append(f"{path.relative_to(REPO)} imports {module}")
    assert upward == []


def test_a_run_without_a_torchvision_model_or_dataset_does_not_import_torchvision(tmp_path):
    code = "import sys, trainer.run.train, trainer.run.evaluation; print('torchvision' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert probe.stdout.strip() == "False", probe.stderr


def unannotated(node):
    """The parameters (besides self and cls) and the return a function leaves without a type hint; `__init__` may
    leave out its return."""
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, *(arg for arg in (args.vararg, args.kwarg) if arg)]
    missing = [arg.arg for arg in params if arg.annotation is None and arg.arg not in ("self", "cls")]
    return missing + (["return"] if node.returns is None and node.name != "__init__" else [])


def test_every_public_function_in_trainer_has_type_hints():
    bare = [f"{name}:{node.lineno} {node.name} ({', '.join(missing)})" for name, node in functions()
            if (node.name == "__init__" or not node.name.startswith("_")) and (missing := unannotated(node))]
    assert bare == []
