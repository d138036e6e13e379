"""Run folders: unique names for runs and sweeps started in the same second, where a resumed run writes, the refusal
to reuse a run's folder, and the records status.json and metrics.json."""
import json
import multiprocessing

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_config, run, run_cli
from trainer.errors import UserError
from trainer.run.rundir import claim_dir, home_of, place, register_resolvers, set_aside, write_status

EXACT = ["model=mlp", "model.hidden=[32]", "trainer.progress=false", "trainer.device=cpu", "data.batch_size=128"]


def test_claim_dir_gives_a_second_claim_of_the_same_folder_a_suffix(tmp_path):
    base = str(tmp_path / "multirun" / "2024-01-01" / "12-00-00")
    assert [claim_dir(base) for _ in range(3)] == [base, base + "_2", base + "_3"]


def test_processes_claiming_the_same_folder_at_once_all_get_their_own(tmp_path):
    base = str(tmp_path / "12-00-00")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        claimed = pool.map(claim_dir, [base] * 8)
    assert len(set(claimed)) == 8 and set(claimed) == {base} | {f"{base}_{i}" for i in range(2, 9)}


def test_run_and_sweep_dirs_are_claimed_through_unique_dir_registered_by_the_cli():
    register_resolvers()
    assert OmegaConf.has_resolver("unique_dir")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra = compose(config_name="config", return_hydra_config=True).hydra
    assert OmegaConf.to_container(hydra.run)["dir"] == "${unique_dir:outputs/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}"
    assert OmegaConf.to_container(hydra.sweep)["dir"] == (
        "${unique_dir:outputs/multirun/${oc.env:LOSSLAB_RUN_TIME,${now:%Y-%m-%d}/${now:%H-%M-%S}}}")


def test_status_json_records_the_errors_first_line_and_wall_time(tmp_path):
    write_status(tmp_path, 12.34567, ValueError("a message wrapped\nover two lines\n\nTraceback and details"))
    assert json.loads((tmp_path / "status.json").read_text()) == {
        "status": "failed", "error": "a message wrapped over two lines", "error_type": "ValueError",
        "wall_time_s": 12.346}
    write_status(tmp_path, 1.0)
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "done"


def test_a_checkpoint_inside_a_run_folder_resumes_there_and_a_loose_one_in_the_new_folder(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / ".hydra").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    (tmp_path / "loose.pt").write_bytes(b"x")
    assert home_of(run_dir / "checkpoints" / "last.pt") == run_dir and home_of(tmp_path / "loose.pt") is None
    resume = place(compose_config([f"ckpt_path={run_dir / 'checkpoints' / 'last.pt'}"]), tmp_path / "new")
    assert (resume.run_dir, resume.continuing, resume.ours) == (run_dir, True, False)
    loose = place(compose_config([f"ckpt_path={tmp_path / 'loose.pt'}"]), tmp_path / "new")
    assert (loose.run_dir, loose.continuing, loose.ours) == (tmp_path / "new", False, True)
    assert place(compose_config(), tmp_path / "new").run_dir == tmp_path / "new"


def test_a_run_dir_holding_checkpoints_is_not_overwritten_without_resuming(tmp_path):
    run([*EXACT, "trainer.epochs=1"], tmp_path)
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(UserError, match=r"already holds a run's checkpoints: resume it with ckpt_path="):
        run([*EXACT, "trainer.epochs=1"], tmp_path)
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before


def test_a_resumed_run_from_the_cli_writes_status_and_metrics_into_its_own_run_dir(tmp_path):
    first = run_cli(tmp_path, *EXACT, "trainer.epochs=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert first.returncode == 0, first.stderr
    resumed = run_cli(tmp_path, *EXACT, "trainer.epochs=2", f"ckpt_path={tmp_path}/run/checkpoints/last.pt",
                      f"hydra.run.dir={tmp_path / 'again'}")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "done"
    assert not (tmp_path / "again" / "status.json").exists()
    missing = run_cli(tmp_path, *EXACT, f"ckpt_path={tmp_path}/nowhere/last.pt", f"hydra.run.dir={tmp_path / 'third'}")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert list((tmp_path / "third").iterdir()) == []  # refused before any work: nothing behind (issue 23 #11)


def test_attempts_set_aside_are_numbered(tmp_path):
    for attempt in (1, 2):
        (tmp_path / "status.json").write_text(str(attempt))
        assert set_aside(tmp_path) == tmp_path / "set_aside" / str(attempt)
    assert (tmp_path / "set_aside" / "2" / "status.json").read_text() == "2"
