"""The wheel a user installs (not only an editable checkout): every package of trainer/ and every YAML of conf/, and
`train` runs from it, from another directory."""
import os
import subprocess
import sys
import zipfile

from tests.conftest import REPO

PACKAGES = sorted(str(p.parent.relative_to(REPO)) for p in (REPO / "trainer").rglob("__init__.py"))
CONFIGS = sorted(str(p.relative_to(REPO / "conf")) for p in (REPO / "conf").rglob("*.yaml"))


def test_the_wheel_holds_every_package_and_config_and_train_runs_from_it(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "wheel"), str(REPO)], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("losslab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert [package for package in PACKAGES if f"{package}/__init__.py" not in names] == []
    assert [config for config in CONFIGS if f"trainer/conf/{config}" not in names] == []
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    trained = subprocess.run([str(site / "bin" / "train"), "trainer.epochs=1", "trainer.progress=false"],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (next((elsewhere / "outputs").glob("*/*")) / "metrics.json").is_file()
    where = subprocess.run([sys.executable, "-c", "import trainer.config as c; print(c.config_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(site / "trainer" / "conf")
