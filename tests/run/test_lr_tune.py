"""optimizer.lr=tune: the same budget for every optimizer, spent on the validation split; the first trial at the
optimizer's own rate, the pruner stopping bad trials early, the record it writes, and a run at `tune` that is
bit-identical to a run at the rate it chose."""
import json
import shutil

import pytest

from tests.conftest import TINY, compose_config, learned, run
from tests.run.test_lr_find import assert_same, checkpoint_of
from trainer.config import validate
from trainer.errors import UserError
from trainer.run.lr_tune import COMPLETE, PRUNED, Trial, chosen_rate, default_rate, tune

SMALL = [*TINY, "trainer.epochs=3", "lr_tune.trials=4", "optimizer=sgd"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tuned run on tiny data: its folder and metrics."""
    folder = tmp_path_factory.mktemp("tuned")
    return folder, run([*SMALL, "optimizer.lr=tune"], folder)


def test_the_search_starts_at_the_optimizers_own_rate_and_keeps_the_best_on_validation(tuned):
    folder, metrics = tuned
    search = json.loads((folder / "lr_tune.json").read_text())
    trials = search["trials"]
    assert len(trials) == 4 and trials[0]["lr"] == 0.01 == search["default"]  # conf/optimizer/sgd.yaml's rate
    finished = [t for t in trials if t["state"] == COMPLETE]
    best = max(t["best"] for t in finished)
    assert search["chosen"] == next(t["lr"] for t in finished if t["best"] == best) == metrics["optimizer/lr"]
    assert trials[0]["state"] == COMPLETE and best >= trials[0]["best"]  # never worse on validation than the default
    assert all(1e-5 <= t["lr"] <= 10 and t["lr"] == float(f"{t['lr']:.2g}") for t in trials)
    assert search["metric"] == "acc/val" and search["higher_is_better"]
    # the budget: 4 trials of up to 3 epochs; a pruned trial stops early
    assert metrics["lr_tune/budget_epochs"] == search["budget_epochs"] == 12
    assert metrics["lr_tune/epochs_trained"] == sum(len(t["values"]) for t in trials) <= 12
    assert all(len(t["values"]) < 3 for t in trials if t["state"] == PRUNED)
    assert (folder / "lr_tune.png").stat().st_size > 10_000


def test_a_tuned_run_ends_bit_identical_to_a_run_at_the_rate_it_chose(tuned, tmp_path):
    folder, metrics = tuned
    explicit = run([*SMALL, f"optimizer.lr={metrics['optimizer/lr']:g}"], tmp_path)
    assert learned(explicit["history"]) == learned(metrics["history"])  # the epochs' timing aside
    a, b = checkpoint_of(folder), checkpoint_of(tmp_path)
    assert a["progress"].pop("chosen")["optimizer/lr"] == b["config"]["optimizer"]["lr"]  # what the search chose
    assert b["progress"].pop("chosen") is None  # a rate typed: nothing was chosen
    for state in (a, b):
        state["progress"]["history"] = learned(state["progress"]["history"])
    for part in ("model", "optimizer", "progress", "rng", "config"):
        assert_same(a[part], b[part], part)


def test_the_default_trial_is_the_run_at_the_default_rate(tuned, tmp_path):
    folder, _ = tuned
    first = json.loads((folder / "lr_tune.json").read_text())["trials"][0]
    default = run([*SMALL, "optimizer.lr=0.01"], tmp_path)
    assert first["values"] == [row["acc/val"] for row in default["history"]][:len(first["values"])]


def test_the_chosen_rate_is_the_best_finished_trial_and_the_earliest_among_equals():
    trials = [Trial(0, 0.01, [0.5, 0.9], COMPLETE), Trial(1, 0.1, [0.9, 0.9], COMPLETE),
              Trial(2, 1.0, [0.95], PRUNED), Trial(3, 0.001, [0.2, 0.8], COMPLETE)]
    assert chosen_rate(trials, higher_is_better=True) == 0.01  # 0.9 twice: the earlier, and never a pruned one
    lower = [Trial(0, 0.01, [3.0, 2.0], COMPLETE, False), Trial(1, 0.1, [1.0], COMPLETE, False)]
    assert chosen_rate(lower, higher_is_better=False) == 0.1
    with pytest.raises(UserError, match="none of its 1 trials finished"):
        chosen_rate([Trial(0, 10.0, [], "diverged")], higher_is_better=True)


def test_every_dense_optimizer_has_a_default_rate_to_start_from():
    from tests.conftest import options

    rates = {option: default_rate(compose_config([f"optimizer={option}"])) for option in options("optimizer")}
    assert rates["adam"] == 0.001 and rates["adadelta"] == 1.0 and all(rate > 0 for rate in rates.values())


def test_a_search_without_its_default_start_draws_every_rate_from_the_range(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=1", "optimizer.lr=tune", "lr_tune.trials=2",
                          "lr_tune.start_at_default=false", "lr_tune.min_lr=0.01", "lr_tune.max_lr=0.1"])
    search = tune(cfg)
    assert [t.lr for t in search.trials] != [0.001] and all(0.01 <= t.lr <= 0.1 for t in search.trials)
    assert search.budget_epochs == 2 and search.default == 0.001


@pytest.mark.parametrize("override,says", [
    ("lr_tune.trials=0", "lr_tune.trials=0 is invalid: the search's number of trials must be a whole number >= 1"),
    ("lr_tune.epochs=1.5", "lr_tune.epochs=1.5 is invalid: the epochs a trial may train (null: trainer.epochs) must be"),
    ("lr_tune.max_lr=1e-6", "lr_tune.max_lr=1e-06 is invalid: the search ends at a rate above lr_tune.min_lr"),
    ("lr_tune.start_at_default=maybe", "lr_tune.start_at_default=maybe is invalid: it must be true or false"),
    ("optimizer.lr=fast", "optimizer.lr=fast is invalid: the learning rate must be a number > 0, auto or tune"),
])
def test_a_bad_tune_setting_is_one_sentence_naming_the_key(override, says):
    with pytest.raises(UserError) as error:
        validate(compose_config([override]), modes=("train",))
    assert str(error.value).startswith(says)


def test_a_default_rate_outside_the_searched_range_is_one_sentence_not_a_trial_dropped(tmp_path):
    with pytest.raises(UserError, match=r"lr_tune.start_at_default=true tries the optimizer's own rate 0.001 first, "
                                        r"outside the range searched \(\[lr_tune.min_lr=0.05, lr_tune.max_lr=1\]\)"):
        run([*TINY, "optimizer.lr=tune", "lr_tune.min_lr=0.05", "lr_tune.max_lr=1", "lr_tune.trials=2"],
            tmp_path / "run")


def test_a_resumed_tune_run_keeps_its_rate_and_reports_the_searchs_budget(tuned, tmp_path):
    folder, metrics = tuned
    shutil.copytree(folder, tmp_path / "run")
    resumed = run([*SMALL, "optimizer.lr=tune", "trainer.epochs=4",
                   f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.pt'}"], tmp_path / "unused")
    assert resumed["epochs"] == 4 and len(resumed["history"]) == 4
    for key in ("optimizer/lr", "lr_tune/budget_epochs", "lr_tune/epochs_trained"):
        assert resumed[key] == metrics[key]
