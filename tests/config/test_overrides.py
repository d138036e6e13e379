"""Overrides as users type them (trainer/config/overrides.py): a path with any character Hydra's grammar reserves works
as typed, and a sweep job's folder names a path by its last part, so a sweep over folders makes flat job folders."""
import shutil

import pytest
from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import TINY, compose_config, run, run_cli
from tests.datafiles import write_pngs
from trainer.config import as_typed, job_dir_name
from trainer.config.overrides import parsed_value, quoted

# Paths with each character Hydra reserves or does not know, as a user may have them: Lightning's checkpoint names,
# a copy's folder, apostrophes, shell-ish characters, brackets, a comma, non-ASCII letters (Hangul, an accent), a
# home folder, Windows backslashes, and quotes and backslashes where they are escapes inside Hydra's quotes.
PATHS = ["saved/epoch=3-step=99.ckpt", "/data/set (copy)", "/data/O'Brien", '/data/"quoted"', "/data/a[1]{2}",
         "/data/cats,dogs", "/data/고양이", "/data/café", "~/photos", "/data/a#b&c!d;e", "/data/<a>^`b`",
         "C:\\Users\\me\\photos\\", "/data/it\\'s", "/data/a b:c", "/data/$HOME"]
KEYS = ["data.root", "ckpt_path", "model.weights", "hydra.run.dir", "hydra.sweep.dir"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("path", PATHS)
def test_a_path_with_any_character_is_read_by_hydra_as_typed(key, path):
    [override] = as_typed([f"{key}={path}"])
    assert parsed_value(override) == path


@pytest.mark.parametrize("path", ["saved/epoch=3-step=99.ckpt", "/data/고양이 (copy)", "/data/it's"])
def test_composed_configs_hold_the_path_as_typed(path):
    cfg = compose_config(as_typed(["data=image_folder", f"data.root={path}", f"ckpt_path={path}",
                                   "model=resnet18_transfer", f"model.weights={path}"]))
    assert (cfg.data.root, cfg.ckpt_path, cfg.model.weights) == (path, path, path)


def test_what_hydra_already_reads_as_meant_is_left_as_typed():
    typed = ["data.root=/data/photos", "ckpt_path=null", "data.root=${oc.env:HOME}", "model.weights=DEFAULT",
             "data.root='/data/it\\'s'", "loss=ce", "seed=0,1", "--cfg", "job", "hydra.run.dir=out/run 1"]
    assert as_typed(typed) == typed
    assert as_typed(["-m", "data.root=/a,/b", "seed=range(3)"]) == ["-m", "data.root=/a,/b", "seed=range(3)"]


def test_in_a_sweep_a_list_of_paths_hydra_cannot_read_is_swept_path_by_path():
    [flag, override] = as_typed(["-m", "data.root=/sets/고양이,/sets/b=1"])
    sweep = OverridesParser.create().parse_override(override)
    assert sweep.is_sweep_override() and list(sweep.sweep_string_iterator()) == ["'/sets/고양이'", "'/sets/b=1'"]


def test_quoting_doubles_only_the_backslashes_that_escape():
    assert quoted("a\\b") == "'a\\b'" and quoted("a'b") == "'a\\'b'" and quoted("a\\") == "'a\\\\'"


def test_a_job_folder_names_a_path_by_its_last_part_and_a_short_hash():
    name = job_dir_name(["data.root=/x/sets/a", "data=image_folder", "trainer.progress=false"], ["trainer.progress"])
    assert name == "data.root=a-" + name.split("data.root=a-")[1][:6] + ",data=image_folder"
    assert "/" not in name
    same_name = [job_dir_name([f"data.root={root}"], []) for root in ("/x/2024/train", "/x/2025/train")]
    assert same_name[0].startswith("data.root=train-") and same_name[0] != same_name[1]
    assert job_dir_name(["data.root='/x/고양이=1'"], []).startswith("data.root=고양이=1-")


def test_a_job_without_path_values_gets_hydras_own_folder_name():
    overrides = ["loss=bce", "optimizer=sgd", "trainer.epochs=3", "data.mean=[0.5]", "trainer.progress=false"]
    parsed = OverridesParser.create().parse_overrides(overrides)
    assert job_dir_name(overrides, ["trainer.progress"]) == get_overrides_dirname(
        parsed, exclude_keys=["trainer.progress"], item_sep=",", kv_sep="=")


def test_a_checkpoint_named_as_lightning_names_it_evaluates_from_the_command_line(tmp_path):
    run([*TINY, "trainer.epochs=1"], tmp_path / "run")
    (tmp_path / "saved").mkdir()
    shutil.copy(tmp_path / "run" / "checkpoints" / "best.pt", tmp_path / "saved" / "epoch=3-step=99.ckpt")
    result = run_cli(tmp_path, "mode=eval", "ckpt_path=saved/epoch=3-step=99.ckpt", "trainer.progress=false",
                     "trainer.device=cpu")
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.glob("outputs/*/*/metrics.json"))


def test_a_sweep_over_two_folders_makes_two_flat_job_folders_that_resume_sweep_finds(tmp_path):
    for name, size in (("고양이=1", 8), ("b", 12)):
        write_pngs(tmp_path / "sets" / name, ["cat", "dog"], 6, size=size)
    sweep = tmp_path / "out" / "sweep (copy)=1"
    common = ["data=image_folder", "data.image_size=8", "model=mlp", "trainer.epochs=1", "trainer.progress=false",
              "trainer.device=cpu", "data.num_workers=0"]
    roots = f"{tmp_path / 'sets' / '고양이=1'},{tmp_path / 'sets' / 'b'}"
    result = run_cli(tmp_path, "-m", *common, f"data.root={roots}", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    jobs = sorted(path.parent.parent for path in sweep.rglob(".hydra/overrides.yaml"))
    assert [job.parent for job in jobs] == [sweep, sweep]  # flat: each job folder right under the sweep folder
    assert [job.name.split(",")[1].split("-")[0] for job in jobs] == ["data.root=b", "data.root=고양이=1"]
    assert f"data.root='{tmp_path / 'sets' / 'b'}'" in (jobs[0] / ".hydra" / "overrides.yaml").read_text()
    again = run_cli(tmp_path, f"resume_sweep={sweep}")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("is done: kept as it is") == 2


def test_a_tables_path_and_column_names_are_typed_as_they_are():
    assert as_typed(["data.path=saved/v=2.csv", "data.target=등급", "data.split_column=part=1",
                     "data.id_column=user id"]) == [
        "data.path='saved/v=2.csv'", "data.target='등급'", "data.split_column='part=1'",
        "data.id_column=user id"]  # Hydra reads a space inside a value as it is


def test_a_job_folder_name_longer_than_a_file_system_allows_is_cut_with_a_hash_and_stays_unique():
    widths = [f"model.hidden=[{','.join(['4'] * 140)}]", "loss=ce"]
    name = job_dir_name(widths, [])
    assert len(name.encode()) <= 200 and name.startswith("loss=ce,model.hidden=[4,4,")
    assert job_dir_name([*widths[:1], "loss=nll"], []) != name  # the hash keeps two such jobs apart
    assert job_dir_name(["loss=ce", "seed=1"], []) == "loss=ce,seed=1"  # a short name is Hydra's own
