"""Nothing a checkpoint, a path or a config mistake can do harms the user: a checkpoint is data, never code; a run never
damages another run's folder; evaluation honours new data and refuses a new model; resume rules hold; mistakes are one
sentence with exit status 2."""
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import TINY, compose_config, run, run_cli
from tests.datafiles import COLOURS, write_pngs
from trainer.errors import UserError

QUICK = [*TINY, "trainer.epochs=1"]


def snapshot(folder):
    """Every file under `folder` with its bytes' hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def done_template(tmp_path_factory):
    """A finished run made by the CLI, as a user has it: .hydra/, train.log, checkpoints, metrics and status."""
    home = tmp_path_factory.mktemp("safety")
    result = run_cli(home, *QUICK, f"hydra.run.dir={home / 'done'}")
    assert result.returncode == 0, result.stderr
    return home / "done"


@pytest.fixture
def done_run(done_template, tmp_path):
    """A copy of the finished run for one test (made once per module: a run costs seconds, a copy nothing)."""
    return Path(shutil.copytree(done_template, tmp_path / "done"))


# --- a checkpoint is data, never code ------------------------------------------------------------------------------

def smuggle(state, where, marker):
    """Put a target that writes `marker` into the stored config at `where` (a dotted path)."""
    payload = {"_target_": "pathlib.Path.write_text", "self": str(marker), "data": "pwned"}
    node = state["config"]
    *parents, last = where.split(".")
    for key in parents:
        node = node[key]
    node[last] = payload


@pytest.mark.parametrize("where", ["data.source", "model", "loss.criterion", "model.hidden", "optimizer.lr"])
def test_a_checkpoint_whose_config_smuggles_a_target_is_refused_for_eval_and_resume_and_nothing_runs(
        done_run, tmp_path, where):
    marker = tmp_path / "marker"
    state = torch.load(done_run / "checkpoints" / "best.pt", weights_only=True)
    smuggle(state, where, marker)
    crafted = tmp_path / "shared" / "model.pt"
    crafted.parent.mkdir()
    torch.save(state, crafted)
    torch.load(crafted, weights_only=True)  # the file itself is a clean weights_only checkpoint
    evaluated = run_cli(tmp_path, "mode=eval", f"ckpt_path={crafted}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 2 and not marker.exists()
    [line] = evaluated.stderr.strip().splitlines()
    assert where in line and ("does not declare there" in line or "only code may use" in line)
    with pytest.raises(UserError) as refused:  # a resume checks the stored config as eval does
        run([*QUICK, f"ckpt_path={crafted}"], tmp_path / "resumed")
    assert where in str(refused.value) and ("does not declare there" in str(refused.value)
                                            or "only code may use" in str(refused.value))
    assert not marker.exists()


def test_an_interpolation_in_a_stored_config_is_refused_before_anything_resolves_it(done_run, tmp_path):
    state = torch.load(done_run / "checkpoints" / "best.pt", weights_only=True)
    state["config"]["data"]["source"]["noise"] = "${unique_dir:" + str(tmp_path / "made-by-a-resolver") + "}"
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(UserError, match=r"holds an interpolation at data.source.noise"):
        run(["mode=eval", f"ckpt_path={tmp_path / 'model.pt'}"], tmp_path / "eval")
    assert not (tmp_path / "made-by-a-resolver").exists()


def test_a_weights_file_is_read_as_tensors_only_whatever_else_it_holds(tmp_path):
    from torchvision.models import get_model

    marker = tmp_path / "marker"
    state = get_model("resnet18", weights=None).state_dict()
    state["config"] = {"model": {"_target_": "pathlib.Path.write_text", "self": str(marker), "data": "x"}}
    torch.save(state, tmp_path / "weights.pth")
    with pytest.raises(UserError, match="does not fit model.arch=resnet18: 0 missing and 1 unexpected entries"):
        run([*QUICK, "model=resnet18_transfer", f"model.weights={tmp_path / 'weights.pth'}", "data.image_size=32",
             "data.channels=3"], tmp_path / "run")
    assert not marker.exists()


# --- a run never damages another run's folder ----------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["mode=eval", "ckpt_path={done}/checkpoints/best.pt"],   # evaluation into the trained run's own folder
    ["loss=nll"],                                            # a new run pointed at a finished one
    ["ckpt_path={done}/checkpoints/last.pt", "loss=nll"],    # a refused resume (another loss)
    ["ckpt_path={done}/checkpoints/last.pt", "trainer.epochs=0"],  # a refused resume (a bad value)
])
def test_a_refused_run_leaves_the_other_runs_folder_byte_for_byte_unchanged(done_run, tmp_path, args):
    before = snapshot(done_run)
    result = run_cli(tmp_path, *QUICK, *[a.format(done=done_run) for a in args], f"hydra.run.dir={done_run}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(done_run) == before
    assert json.loads((done_run / "status.json").read_text())["status"] == "done"


def test_evaluation_writes_into_its_own_folder_and_leaves_the_run_unchanged(done_run, tmp_path):
    before = snapshot(done_run)
    result = run_cli(tmp_path, "mode=eval", f"ckpt_path={done_run}/checkpoints/best.pt",
                     f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 0, result.stderr
    assert snapshot(done_run) == before
    assert {"metrics.json", "status.json", "train.log", ".hydra/overrides.yaml"} <= set(snapshot(tmp_path / "eval"))


def test_resuming_a_loose_checkpoint_continues_in_a_new_folder(done_run, tmp_path):
    exported = tmp_path / "somewhere" / "exported"
    exported.mkdir(parents=True)
    (exported / "model.pt").write_bytes((done_run / "checkpoints" / "last.pt").read_bytes())
    result = run_cli(tmp_path, *TINY, "trainer.epochs=2", f"ckpt_path={exported / 'model.pt'}",
                     f"hydra.run.dir={tmp_path / 'continued'}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in exported.parent.rglob("*")) == ["exported", "model.pt"]
    assert json.loads((tmp_path / "continued" / "metrics.json").read_text())["epochs"] == 2


def test_a_resumed_run_logs_its_resume_in_its_own_train_log(done_run, tmp_path):
    result = run_cli(tmp_path, *TINY, "trainer.epochs=2", f"ckpt_path={done_run}/checkpoints/last.pt")
    assert result.returncode == 0, result.stderr
    text = (done_run / "train.log").read_text()
    assert "resumed from" in text and text.count("epoch 2/2") == 1
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.json"))


# --- evaluation on other data --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A run trained on an image folder (read by the tests, never changed): its best.pt, overrides and metrics."""
    home = tmp_path_factory.mktemp("folder_run")
    write_pngs(home / "images", ["cat", "dog", "owl"], 8)
    common = ["data=image_folder", "data.image_size=16", "data.num_workers=0", "trainer.progress=false"]
    metrics = run([*common, f"data.root={home / 'images'}", "data.cache=true", "trainer.epochs=3",
                   "optimizer.lr=0.01"], home / "run")
    return home / "run" / "checkpoints" / "best.pt", common, metrics


def test_eval_honours_a_new_test_folder_of_the_same_classes(folder_run, tmp_path):
    ckpt, common, _ = folder_run
    write_pngs(tmp_path / "new", ["cat", "dog", "owl"], 6)
    for i, image in enumerate(sorted((tmp_path / "new" / "owl").iterdir())):  # every owl looks like a cat (each a
        Image.new("RGB", (30 + i, 30), COLOURS["cat"]).save(image)  # file of its own: a copy is read once)
    evaluated = run(["mode=eval", f"ckpt_path={ckpt}", *common, f"data.root={tmp_path / 'new'}",
                     "data.source.test_fraction=0.5"], tmp_path / "eval")
    assert evaluated["test/acc"] < 0.8  # it really evaluated the new folder: its owls are called cats


@pytest.mark.parametrize("change,says", [
    (["model.hidden=[8]"], "mode=eval tests the checkpoint's own model and loss, so model.hidden=[8] cannot apply"),
    (["loss=nll"], "so loss=nll cannot apply"),
    (["data.image_size=24"], "data.shape=[3, 24, 24] differs from the [3, 16, 16]"),
])
def test_eval_refuses_a_new_model_or_loss_and_data_the_model_cannot_take(folder_run, tmp_path, change, says):
    ckpt, common, _ = folder_run
    with pytest.raises(UserError, match=re_escape(says)):
        run(["mode=eval", f"ckpt_path={ckpt}", *common, f"data.root={ckpt.parents[2] / 'images'}", *change],
            tmp_path / "e")


def test_eval_refuses_data_with_other_classes(folder_run, tmp_path):
    ckpt, common, _ = folder_run
    write_pngs(tmp_path / "other", ["cat", "dog", "owl"], 3)
    (tmp_path / "other" / "owl").rename(tmp_path / "other" / "emu")
    with pytest.raises(UserError, match=r"names the classes \['cat', 'dog', 'emu'\], but ckpt_path=.* was trained on "
                                        r"\['cat', 'dog', 'owl'\]"):
        run(["mode=eval", f"ckpt_path={ckpt}", *common, f"data.root={tmp_path / 'other'}"], tmp_path / "e")


def test_eval_with_only_a_loading_key_keeps_the_runs_own_data(tmp_path):
    run([*QUICK, "model=small_cnn"], tmp_path / "run")
    evaluated = run(["mode=eval", f"ckpt_path={tmp_path / 'run/checkpoints/best.pt'}", "data.batch_size=7"],
                    tmp_path / "eval")
    assert evaluated["test/acc"] > 0.5  # the run's synthetic data, batched by 7


def re_escape(text):
    import re
    return re.escape(text)


# --- resume rules ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_a_schedule_planned_over_the_run_cannot_be_extended_on_resume(tmp_path, scheduler):
    run([*TINY, f"scheduler={scheduler}", "trainer.epochs=2"], tmp_path)
    with pytest.raises(UserError, match=r"plans its learning rate over trainer.epochs=2 .* resume with "
                                        r"trainer.epochs=2, or start a new run with trainer.epochs=3"):
        run([*TINY, f"scheduler={scheduler}", "trainer.epochs=3", f"ckpt_path={tmp_path}/checkpoints/last.pt"],
            tmp_path / "x")


def test_a_step_schedule_extends_on_resume(tmp_path):
    run([*TINY, "scheduler=step", "trainer.epochs=2"], tmp_path)
    metrics = run([*TINY, "scheduler=step", "trainer.epochs=3", f"ckpt_path={tmp_path}/checkpoints/last.pt"],
                  tmp_path / "x")
    assert len(metrics["history"]) == 3


def test_shrinking_the_run_below_its_trained_epochs_is_refused(tmp_path):
    run([*TINY, "trainer.epochs=2"], tmp_path)
    with pytest.raises(UserError, match=r"has already trained 2 epochs, so trainer.epochs=1 cannot continue it"):
        run([*TINY, "trainer.epochs=1", f"ckpt_path={tmp_path}/checkpoints/last.pt"], tmp_path / "x")


# --- config mistakes and exit statuses -----------------------------------------------------------------------------

@pytest.mark.parametrize("args,says", [
    (["+trainer.epoch=1"], "error: +trainer.epoch=1 adds trainer.epoch, which losslab does not read: use "
                           "trainer.epochs=1"),
    (["+foo=1"], "error: +foo=1 adds foo, which losslab does not read: remove it"),
    (["seed=-1"], "error: seed=-1 is invalid: the seed must be a whole number in [0, 4294967295], e.g. seed=0"),
    (["data.source._target_=os.system"], "blocklisted because it allows config data to control executable behavior"),
    (["loss=nope"], "Could not find 'loss/nope'"),
    (["trainer.epoch=3"], "error: trainer.epoch=3 names trainer.epoch, which losslab does not read: use "
                          "trainer.epochs=3"),
])
def test_config_mistakes_exit_2_with_one_message_and_no_training(tmp_path, args, says):
    result = run_cli(tmp_path, *QUICK, *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_data_shape_the_data_do_not_have_is_named_as_typed(tmp_path):
    result = run_cli(tmp_path, "data.shape=[3,8,8]", "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr.startswith("error: data.shape=[3, 8, 8] does not describe the data, whose samples are "
                                    "[1, 8, 8]")  # digits


def test_an_added_key_a_target_reads_is_allowed():
    from trainer.config import check_added_keys
    check_added_keys(compose_config(["+loss.criterion.weight=null"]), ["+loss.criterion.weight=null"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_sentence_before_training(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    result = run_cli(tmp_path, *QUICK, f"hydra.run.dir={folder}")
    assert result.returncode == 2 and "cannot be written" in result.stderr


def test_a_file_in_the_way_of_the_checkpoints_folder_is_one_sentence_before_training(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoints").write_text("not a folder")
    with pytest.raises(UserError, match=rf"{folder} holds files losslab did not write \(checkpoints\)"):
        run(QUICK, folder)
    assert [p.name for p in folder.iterdir()] == ["checkpoints"] and (folder / "checkpoints").read_text() == (
        "not a folder")
