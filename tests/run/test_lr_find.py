"""The learning-rate range test (mode=lr_find) and optimizer.lr=auto: the curve, the middle-of-the-fall rule, the early
stop, the files it writes, and a run at `auto` that is bit-identical to a run at the rate it chose."""
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.conftest import REPO, TINY, compose_config, learned, run
from trainer.errors import UserError
from trainer.run.lr_find import Smoothed, middle_of_fall, suggest


def test_the_suggestion_is_the_first_rate_half_the_way_down_the_fall_whatever_the_flat_start():
    # flat at 3, falling to 1 over 20 rates, a noisy floor, then the blow-up: halfway down is the loss 2
    fall = [3.0] * 30 + list(np.linspace(3, 1, 20)) + [1.0, 1.1, 1.02, 1.05] * 5 + [1.5, 3, 9]
    rates = [10 ** (-7 + i / 10) for i in range(len(fall))]
    # halfway from 3 down to 1 is 2: the fall's 10th point (1.947) is the first at or below it, the 9th is 2.05
    assert middle_of_fall(list(zip(rates, fall))) == pytest.approx(rates[40])
    # a longer flat start (a lower lr_find.min_lr) or a floor whose lowest point moves does not move it
    longer = [3.0] * 30 + fall
    assert middle_of_fall(list(zip([10 ** (-10 + i / 10) for i in range(len(longer))], longer))) == pytest.approx(
        rates[40])
    assert suggest(rates, fall) == float(f"{rates[40]:.2g}")


def test_a_loss_that_never_falls_suggests_the_first_rate_it_reads():
    assert middle_of_fall([(1e-3, 1.0), (1e-2, 1.5), (1e-1, 2.0)]) == 1e-3


def test_the_smoothed_loss_is_a_bias_corrected_average_that_diverges_at_four_times_its_best():
    curve = Smoothed()
    for _ in range(5):
        curve.add(2.0)
    assert curve.values == pytest.approx([2.0] * 5) and not curve.diverged()
    curve.add(2.0 + 4 * 2.0 / (1 - 0.98) * 1.1)  # one huge loss lifts the average above 4 x 2.0
    assert curve.diverged()
    curve.add(float("nan"))
    assert curve.diverged()


def test_mode_lr_find_writes_the_curve_and_prints_the_suggestion_and_the_command(tmp_path, capsys):
    result = run([*TINY, "mode=lr_find", "lr_find.steps=40", "lr_find.min_lr=1e-5", "lr_find.max_lr=1"], tmp_path)
    stored = json.loads((tmp_path / "lr_find.json").read_text())
    assert stored == json.loads(json.dumps(result))
    assert set(stored) == {"rates", "losses", "smoothed", "suggestion", "rule", "stopped"}
    rates = stored["rates"]
    assert rates[0] == pytest.approx(1e-5) and len(rates) <= 40 and len(stored["losses"]) == len(rates)
    assert np.allclose(np.diff(np.log(rates)), math.log(1e5) / 39)  # exponential: a constant factor per batch
    assert 1e-5 <= stored["suggestion"] <= 1 and "middle of the fall" in stored["rule"]
    assert (tmp_path / "lr_find.png").stat().st_size > 0
    printed = capsys.readouterr().out
    command = re.search(r"to train at it: (train .*)", printed).group(1)
    assert command.endswith(f"optimizer.lr={stored['suggestion']:g}")
    # the printed rate, read back as Hydra reads it, is exactly the suggestion
    assert compose_config([command.split()[-1]]).optimizer.lr == stored["suggestion"]
    assert not (tmp_path / "checkpoints").exists()


def test_the_test_stops_once_the_smoothed_loss_has_diverged(tmp_path):
    # noisy data: a loss that cannot reach 0, so too large a rate shows
    result = run([*TINY, "data.source.noise=3", "mode=lr_find", "optimizer=sgd", "lr_find.max_lr=1e8",
                  "lr_find.steps=200"], tmp_path)
    assert len(result["rates"]) < 200 and "diverged" in result["stopped"]
    assert result["suggestion"] < result["rates"][-1]


@pytest.mark.parametrize("lr", ["mode=lr_find", "optimizer.lr=auto"])
def test_rprop_whose_rate_is_only_its_first_step_gets_one_sentence(lr, tmp_path):
    with pytest.raises(UserError, match=r"^the learning-rate range test means nothing for torch.optim.Rprop: its rate is "
                                        r"only the first step size, .* use optimizer.lr=tune"):
        run([*TINY, "optimizer=rprop", lr], tmp_path)
    assert not (tmp_path / "lr_find.json").exists()


@pytest.mark.parametrize("lr", ["mode=lr_find", "optimizer.lr=auto"])
def test_an_optimizer_that_searches_its_own_step_gets_one_sentence(lr, tmp_path):
    with pytest.raises(UserError, match=r"^the learning-rate range test means nothing for an optimizer that finds its "
                                        r"own step by line search \(optimizer.line_search_fn=strong_wolfe\)"):
        run([*TINY, "optimizer=lbfgs", lr], tmp_path)
    assert not (tmp_path / "lr_find.json").exists() and not (tmp_path / "checkpoints").exists()


def checkpoint_of(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def assert_same(a, b, where=""):
    """Tensors, numbers and containers equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_auto_on_the_default_run_trains_at_the_suggestion_and_learns(tmp_path):
    metrics = run(["trainer.epochs=6", "trainer.progress=false", "trainer.device=cpu", "optimizer.lr=auto"], tmp_path)
    chosen = json.loads((tmp_path / "lr_find.json").read_text())["suggestion"]
    assert metrics["optimizer/lr"] == chosen and metrics["test/acc"] >= 0.9  # chance is 0.1
    assert checkpoint_of(tmp_path)["optimizer"]["param_groups"][0]["lr"] == chosen
    # the HParams tab shows the rate trained at; the learning-rate chart shows it too
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optimizer.lr"].number_value == pytest.approx(chosen)
    assert events.Scalars("lr")[0].value == pytest.approx(chosen) and "optimizer/lr" not in events.Tags()["scalars"]


def test_an_auto_run_ends_bit_identical_to_a_run_at_the_rate_it_chose(tmp_path):
    # shuffling, dropout and a second epoch: every random stream must be where it would be without the test
    exact = [*TINY, "trainer.epochs=2", "model.dropout=0.3", "lr_find.steps=30"]
    auto = run([*exact, "optimizer.lr=auto"], tmp_path / "auto")
    explicit = run([*exact, f"optimizer.lr={auto['optimizer/lr']:g}"], tmp_path / "explicit")
    assert "optimizer/lr" not in explicit and learned(explicit["history"]) == learned(auto["history"])
    a, b = checkpoint_of(tmp_path / "auto"), checkpoint_of(tmp_path / "explicit")
    assert a["progress"].pop("chosen")["optimizer/lr"] == b["config"]["optimizer"]["lr"]  # what the search chose
    assert b["progress"].pop("chosen") is None  # a rate typed: nothing was chosen
    for state in (a, b):
        state["progress"]["history"] = learned(state["progress"]["history"])
    for part in ("model", "optimizer", "scheduler", "progress", "rng", "config"):
        assert_same(a[part], b[part], part)


def test_onecycle_peaks_at_the_chosen_rate(tmp_path):
    metrics = run([*TINY, "trainer.epochs=1", "scheduler=onecycle", "optimizer.lr=auto", "lr_find.steps=20"], tmp_path)
    [group] = checkpoint_of(tmp_path)["optimizer"]["param_groups"]
    assert group["max_lr"] == metrics["optimizer/lr"]


def test_resuming_an_auto_run_keeps_its_rate_and_does_not_test_again(tmp_path, monkeypatch):
    first = run([*TINY, "trainer.epochs=1", "optimizer.lr=auto", "lr_find.steps=20"], tmp_path)

    def no_second_test(cfg):
        raise AssertionError("the range test ran again on resume")

    monkeypatch.setattr("trainer.run.lr_find.range_test", no_second_test)
    resumed = run([*TINY, "trainer.epochs=2", "optimizer.lr=auto", "lr_find.steps=20",
                   f"ckpt_path={tmp_path}/checkpoints/last.pt"], tmp_path / "unused")
    assert resumed["optimizer/lr"] == first["optimizer/lr"] and len(resumed["history"]) == 2
    assert checkpoint_of(tmp_path)["optimizer"]["param_groups"][0]["lr"] == first["optimizer/lr"]


def test_under_torchrun_an_auto_run_trains_and_rank_0_alone_reports_and_records_the_rate(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("LOSSLAB_RUN_TIME", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
               *TINY, "data.batch_size=16", "trainer.epochs=1", "optimizer.lr=auto", "lr_find.steps=20"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = [p.parent for p in (tmp_path / "outputs").glob("*/*/.hydra")]
    chosen = json.loads((run_dir / "metrics.json").read_text())["optimizer/lr"]
    assert result.stdout.count("the range test suggests") == 1  # only rank 0 prints
    assert json.loads((run_dir / "lr_find.json").read_text())["suggestion"] == chosen
    assert checkpoint_of(run_dir)["optimizer"]["param_groups"][0]["lr"] == chosen
