"""scripts/compare.py's sections on learning rates and imbalanced classes, written from real (tiny) sweeps."""
import os
import subprocess
import sys

from tests.conftest import REPO, TINY
from tests.sweep.test_summary import table_rows


def markdown_rows(page, after):
    """The cells of the first table after `after` (its header and rule left out)."""
    lines = page.split(after, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i, line in enumerate(lines[start:], start) if not line.startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip("| ").split(" | ")] for line in lines[start + 2:end]]


def test_compare_writes_the_optimizer_table_and_the_imbalance_section_from_their_sweeps(tmp_path):
    out, runs = tmp_path / "compare.md", tmp_path / "runs"
    # one optimizer (rprop: auto refuses it), two remedies: the smallest sweeps that write every part of both sections
    args = ["--no-regression", "--losses", "none", "--seeds", "2", "--optimizers", "rprop",
            "--remedies", "loss=ce loss.class_weights=null,balanced", "--optimizer-epochs", "1", "--imbalance-epochs",
            "1", "--set", *TINY, "lr_tune.trials=2", "--out", str(out), "--runs", str(runs)]
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "compare.py"), *args], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    page = out.read_text()
    assert "## Fair learning rates" in page and "optimizer.lr=tune" in page
    [rprop] = markdown_rows(page, "## Fair learning rates")
    assert rprop[:2] == ["`rprop`", "0.001"]
    assert rprop[5] == "the learning-rate range test means nothing for torch.optim.Rprop"  # auto refuses it
    assert "≥ in" in rprop[9] and rprop[10] != "–"  # tune against the default rate, seed by seed; the epochs it ran
    assert "## Imbalanced classes" in page and "data.imbalance=0.01" in page
    remedies = [row[0] for row in markdown_rows(page, "## Imbalanced classes")]
    assert sorted(remedies) == ["loss.class_weights=balanced", "loss.class_weights=null"]
    ranked = table_rows(page, "The seed groups, ranked by best validation balanced accuracy")
    assert ranked[0][5] == "best" and all(row[2] == "2/2" for row in ranked)
    assert "**Head and tail against plain `ce`**" in page
