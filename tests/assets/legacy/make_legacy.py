"""How the legacy checkpoints beside this file were made: run it with an earlier losslab first on the path.

    git worktree add /tmp/losslab-a6a7d0a a6a7d0a
    PYTHONPATH=/tmp/losslab-a6a7d0a python tests/assets/legacy/make_legacy.py /tmp/legacy-out

For each run it trains 2 epochs (keeping last.pt), evaluates that checkpoint with `mode=eval`, and trains the same
run straight for 3 epochs; expected.json holds what that version computed.
"""
import json
import shutil
import sys
from pathlib import Path

from tests.conftest import run
from tests.datafiles import write_pngs

BASE = ["model=mlp", "model.hidden=[8]", "trainer.progress=false", "trainer.device=cpu"]


def main(out):
    out, work = Path(out), Path(out) / "work"
    work.mkdir(parents=True)
    folder = work / "pngs"
    write_pngs(folder, ["cat", "dog", "owl"], 12, size=10)
    image_data = ["data=image_folder", f"data.root={folder}", "data.num_workers=0", "data.batch_size=8"]
    runs = {"iris_mlp": ["data=iris"], "diabetes_mse": ["data=diabetes", "loss=mse"], "image_folder_mlp": image_data}
    record = {}
    for name, extra in runs.items():
        two, three = work / f"{name}_2", work / f"{name}_3"
        run([*BASE, *extra, "trainer.epochs=2"], two)
        straight = run([*BASE, *extra, "trainer.epochs=3"], three)
        evaluated = run(["mode=eval", f"ckpt_path={two}/checkpoints/last.pt", *BASE[2:],
                         *(image_data if "image" in name else [])], work / f"{name}_eval")
        shutil.copy(two / "checkpoints" / "last.pt", out / f"{name}_epoch2.pt")
        keep = lambda metrics: {k: v for k, v in metrics.items() if k.startswith(("test/", "best/"))}
        record[name] = {"overrides": [*BASE, *extra], "eval_of_epoch2": keep(evaluated),
                        "straight_3_epochs": keep(straight)}
    (out / "expected.json").write_text(json.dumps(record, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
