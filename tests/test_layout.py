"""The shape of the code itself: short functions with few positional parameters, and a run that imports only
what its config needs."""
import ast
import subprocess
import sys

from tests.conftest import REPO

MAX_LINES, MAX_POSITIONAL = 42, 6


def functions():
    for path in sorted((REPO / "trainer").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.name, node


def test_every_function_in_trainer_is_short_and_takes_few_positional_parameters():
    too_long = [f"{name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)" for name, node in functions()
                if node.end_lineno - node.lineno + 1 > MAX_LINES]
    too_wide = [f"{name}:{node.name} ({len(node.args.posonlyargs + node.args.args)} positional)"
                for name, node in functions() if len(node.args.posonlyargs + node.args.args) > MAX_POSITIONAL]
    assert too_long == [] and too_wide == []


def test_a_run_without_a_torchvision_model_or_dataset_does_not_import_torchvision(tmp_path):
    code = "import sys, trainer.train, trainer.evaluation; print('torchvision' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert probe.stdout.strip() == "False", probe.stderr
