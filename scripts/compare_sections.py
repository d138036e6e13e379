"""Two sections of docs/compare.md that scripts/compare.py writes (it is the one generator; this module keeps it
readable): the optimizers at their default rate, at `optimizer.lr=auto` and at `optimizer.lr=tune`, and the
imbalanced-data experiment. Every number and verdict is read from the sweeps they run."""
import json
import math
import statistics

from trainer.metrics import BALANCED_ACC, CHOSEN_LR, MACRO_F1, PER_CLASS_ACC, TEST, TUNE_EPOCHS, result_key
from trainer.sweep import read_summary
from trainer.sweep.report import group_table, markdown_table
from trainer.sweep.stats import compare

TEST_ACC = result_key(TEST, "acc")
OPTIMIZERS = "sgd,adam,adamw,rmsprop,adagrad,adadelta,adamax,asgd,nadam,radam,rprop"
# the three ways an optimizer gets its rate: (folder, what the page calls it, overrides)
LR_MODES = (("default", "default", []), ("auto", "`auto`", ["optimizer.lr=auto"]),
            ("tune", "`tune`", ["optimizer.lr=tune"]))
# the imbalanced-data experiment: every remedy alone and together (--remedies), on a long-tailed training split
IMBALANCE = ["data.imbalance=0.01", "data.best=balanced_acc"]
REMEDIES = "loss=ce,focal loss.class_weights=null,balanced data.sampler=null,balanced"


def own_epochs(extra, epochs):
    """--set's overrides with this section's trainer.epochs instead of theirs."""
    return [*(o for o in extra if not o.startswith("trainer.epochs=")), f"trainer.epochs={epochs}"]


def optimizer_overrides(args, lr_overrides):
    return [f"optimizer={args.optimizers}", f"seed=range({args.seeds})", *lr_overrides,
            *own_epochs(args.extra, args.optimizer_epochs)]


def imbalance_overrides(args):
    return [*IMBALANCE, *args.remedies.split(), f"seed=range({args.seeds})",
            *own_epochs(args.extra, args.imbalance_epochs)]


# --- reading the jobs -------------------------------------------------------------------------------------------

def option(job, key):
    return next((o.split("=", 1)[1] for o in job.overrides if o.split("=", 1)[0] == key), None)


def by_seed(jobs, key):
    """{seed: value of metrics.json's `key`} of the finished jobs."""
    return {option(job, "seed"): job.metrics[key] for job in jobs
            if job.status == "done" and isinstance(job.metrics.get(key), (int, float))}


def spread(values, spec="{:.4f}"):
    """"mean [lowest, highest]" of a few seeds' values; "–" for none."""
    if not values:
        return "–"
    text = spec.format(statistics.fmean(values))
    return text if len(values) == 1 else f"{text} [{spec.format(min(values))}, {spec.format(max(values))}]"


def versus(default, other):
    """Test accuracy of `other` against the default rate's, seed by seed: the mean difference, its range or
    interval, the seeds it was at least as good in."""
    found = compare(default, other, higher_is_better=True)
    if found.difference is None or found.pairs == 0:
        return "–"
    d = found.difference
    interval = "" if d.low is None else f" [{d.low:+.4f}, {d.high:+.4f}]"
    held = sum(other[seed] >= default[seed] for seed in default.keys() & other.keys())
    return f"{d.mean:+.4f}{interval}, ≥ in {held}/{found.pairs}"


def default_rate(summary, name):
    """The rate an optimizer's jobs trained at without lr=auto or tune: their stored config's optimizer.lr."""
    import yaml

    for job in summary.jobs:
        if option(job, "optimizer") == name:
            config = summary.sweep_dir / job.name / ".hydra" / "config.yaml"
            if config.is_file():
                return yaml.safe_load(config.read_text())["optimizer"]["lr"]
    return None


def refused(summary, name):
    """The first line of the error that stopped an optimizer's jobs, if every one of them failed."""
    jobs = [job for job in summary.jobs if option(job, "optimizer") == name]
    if jobs and all(job.status != "done" for job in jobs):
        return (jobs[0].error or jobs[0].status).split(":")[0]
    return None


# --- the valley rule of earlier losslab, read on today's curves (why auto chose low rates) ------------------------

def old_valley(rates, losses):
    """fastai's valley on a curve smoothed as fastai smooths it (0.98), the first tenth and the last five left out:
    the rate halfway along the longest stretch of falling smoothed loss. What `auto` chose before."""
    smoothed, average = [], 0.0
    for i, loss in enumerate(losses):
        average = 0.98 * average + 0.02 * (math.nan if loss is None else loss)
        smoothed.append(average / (1 - 0.98 ** (i + 1)))
    kept = [(r, s) for r, s in list(zip(rates, smoothed))[len(rates) // 10:len(rates) - 5] if math.isfinite(s)]
    if len(kept) < 2:
        return None
    longest = [1] * len(kept)
    for i in range(1, len(kept)):
        longest[i] = max([longest[j] + 1 for j in range(i) if kept[j][1] > kept[i][1]], default=1)
    end = max(range(len(kept)), key=lambda i: (longest[i], -i))
    start = max(end - longest[end], 0)
    third = (end - start) / 3
    return kept[start + int(third) + int(third / 2)][0]


def valley_rates(summary, name):
    """The old valley's rate on each of an optimizer's auto jobs' range tests (lr_find.json)."""
    found = []
    for job in summary.jobs:
        record = summary.sweep_dir / job.name / "lr_find.json"
        if option(job, "optimizer") == name and record.is_file():
            test = json.loads(record.read_text())
            found.append(old_valley(test["rates"], test["losses"]))
    return [rate for rate in found if rate is not None]


# --- the sections -------------------------------------------------------------------------------------------------

def optimizer_rows(summaries, names):
    rows = []
    for name in names:
        jobs = {mode: [j for j in summary.jobs if option(j, "optimizer") == name] for mode, summary in summaries.items()}
        accuracy = {mode: by_seed(found, TEST_ACC) for mode, found in jobs.items()}
        rates = {mode: list(by_seed(found, CHOSEN_LR).values()) for mode, found in jobs.items()}
        auto = refused(summaries["auto"], name) or spread(list(accuracy["auto"].values()))
        spent = list(by_seed(jobs["tune"], TUNE_EPOCHS).values())
        rows.append([f"`{name}`", f"{default_rate(summaries['default'], name):g}",
                     spread(list(accuracy["default"].values())), spread(rates["auto"], "{:.2g}"),
                     spread(valley_rates(summaries["auto"], name), "{:.2g}"), auto,
                     versus(accuracy["default"], accuracy["auto"]), spread(rates["tune"], "{:.2g}"),
                     spread(list(accuracy["tune"].values())), versus(accuracy["default"], accuracy["tune"]),
                     spread(spent, "{:.0f}")])
    return rows


OPTIMIZERS_EXPLAINED = (
    "Each optimizer trains for {epochs} epochs, three ways: at "
    "the rate its YAML gives it (hand-picked for this task), at the rate `optimizer.lr=auto`'s range test suggests "
    "(the middle of the loss's fall), and at the rate `optimizer.lr=tune` chooses ({trials} trials of up to {epochs} "
    "epochs judged on the validation split, the first at the YAML's rate, bad ones pruned). Cells are the mean over "
    "the seeds and, in brackets, the lowest and highest seed. \"vs default\" is the test accuracy against the "
    "default rate's, seed by seed (the same seed is the same split, initialisation and batch order): the mean "
    "difference, its range, and in how many seeds it was at least as good. \"valley\" is the rate fastai's `valley` "
    "rule, which `auto` used before, picks on the same range tests.")


def optimizers_section(runs, args, *, describe):
    summaries = {mode: read_summary(runs / f"optimizers_{mode}") for mode, _, _ in LR_MODES
                 if (runs / f"optimizers_{mode}" / "summary.md").is_file()}
    if len(summaries) < len(LR_MODES):
        return []
    names = args.optimizers.split(",")
    header = ["optimizer", "default lr", "test acc, default", "`auto` lr", "valley lr (before)", "test acc, `auto`",
              "`auto` vs default", "`tune` lr", "test acc, `tune`", "`tune` vs default", "`tune` epochs run"]
    rows = optimizer_rows(summaries, names)
    trials = tune_trials(summaries["tune"])
    commands = [f"train -m {' '.join(recorded(summaries[mode]))}" for mode, _, _ in LR_MODES]
    lines = ["## Fair learning rates: every optimizer at its default rate, at `auto` and at `tune`", "",
             "```bash\n" + "\n".join(commands) + "\n```", "", describe(summaries["default"]), "",
             OPTIMIZERS_EXPLAINED.format(epochs=epochs_of(summaries["default"]), trials=trials), "",
             markdown_table(header, rows), "", fairness_paragraph(summaries, names), ""]
    return lines


def recorded(summary):
    import yaml

    return yaml.safe_load((summary.sweep_dir / "multirun.yaml").read_text())["hydra"]["overrides"]["task"]


def epochs_of(summary):
    job = next(job for job in summary.jobs if job.status == "done")
    return job.metrics.get("epochs")


def tune_trials(summary):
    for job in summary.jobs:
        record = summary.sweep_dir / job.name / "lr_tune.json"
        if record.is_file():
            return len(json.loads(record.read_text())["trials"])
    return "?"


def fairness_paragraph(summaries, names):
    """Which optimizers `auto` and `tune` left below their default rate (by mean test accuracy), in words."""
    def below(mode):
        out = []
        for name in names:
            jobs = {m: [j for j in summaries[m].jobs if option(j, "optimizer") == name] for m in ("default", mode)}
            default, other = by_seed(jobs["default"], TEST_ACC), by_seed(jobs[mode], TEST_ACC)
            if other and default and statistics.fmean(other.values()) < statistics.fmean(default.values()):
                out.append(f"`{name}` ({statistics.fmean(other.values()) - statistics.fmean(default.values()):+.4f})")
        return out

    auto, tune = below("auto"), below("tune")
    refusals = [f"`{name}`" for name in names if refused(summaries["auto"], name)]
    return ("**At least as good as the defaults?** Mean test accuracy below the default rate's: with `auto` "
            f"{', '.join(auto) or 'none'}; with `tune` {', '.join(tune) or 'none'}"
            + (f". `auto` refuses {', '.join(refusals)}: its rate is only the first step size" if refusals else "")
            + ". `tune` judges on the validation split, so a rate that ties or beats the default there can still "
              "lose a little on the test split: that is the seeds' noise, which the ranges show. The range test "
              "reads one curve of a few hundred batches; `tune` trains the candidates, so it costs more (the "
              "epochs run) and is the fair comparison the optimizer-benchmarking literature uses (Choi et al. 2019, "
              "Schmidt et al. 2021).")


def head_and_tail(group):
    """Each finished seed's mean test recall of the larger half of the classes and of the smaller half
    (data.imbalance keeps fewer of each class as its index grows)."""
    recalls = [job.metrics[PER_CLASS_ACC] for job in group.done if job.metrics.get(PER_CLASS_ACC)]
    mean_of = lambda run, part: statistics.fmean(r for r in run[part] if r is not None)
    return ([mean_of(run, slice(0, len(run) // 2)) for run in recalls],
            [mean_of(run, slice(len(run) // 2, None)) for run in recalls])


def imbalance_section(runs, pictures, *, describe):
    if not (runs / "imbalance" / "summary.md").is_file():
        return []
    summary = read_summary(runs / "imbalance")
    header = ["remedy", "test acc", "test balanced acc", "test macro-F1", "recall, larger half of the classes",
              "recall, smaller half"]
    rows = []
    for group in summary.groups:
        head, tail = head_and_tail(group)
        values = lambda key: [job.metrics[key] for job in group.done if key in job.metrics]
        rows.append([group.name, spread(values(TEST_ACC)), spread(values(result_key(TEST, BALANCED_ACC))),
                     spread(values(result_key(TEST, MACRO_F1))), spread(head), spread(tail)])
    lines = ["## Imbalanced classes: what focal loss, class weights and a balanced sampler are for", "",
             f"```bash\ntrain -m {' '.join(recorded(summary))}\n```", "", describe(summary), "", IMBALANCE_EXPLAINED, "",
             markdown_table(header, rows), "", "The seed groups, ranked by best validation balanced accuracy "
             "(what picks `best.pt` here), each against the best:", "", group_table(summary), ""]
    if pictures:
        lines += [f"![curves of the imbalanced-data sweep]({pictures})", ""]
    return lines + [imbalance_paragraph(summary), ""]


IMBALANCE_EXPLAINED = (
    "`data.imbalance=0.01` makes the training split long-tailed, as CIFAR-LT does: class k of K keeps "
    "0.01^(k/(K-1)) of its training samples (at least one), so the first class keeps all of its own and the last "
    "1% (on digits: 124 down to 1, `train.log` lists them); validation and test stay balanced, so every class "
    "counts alike there. `best.pt` is picked by validation balanced accuracy "
    "(`data.best=balanced_acc`), the mean of the per-class recalls, which plain accuracy would hide the tail "
    "behind. The remedies: `loss.class_weights=balanced` (each sample weighted by the inverse frequency of its "
    "class), `data.sampler=balanced` (training batches drawn with every class equally often), `loss=focal` "
    "(easy, confident samples count little), alone and together. Cells: the mean over the seeds [lowest, "
    "highest]; the test recall of the head (the larger half of the classes: on digits 0-4, 124 to 16 training "
    "samples) and of the tail (the smaller half: 5-9, 9 to 1).")


def is_plain(job):
    """A job with no remedy: ce, no class weights, shuffled batches."""
    return (option(job, "loss") in (None, "ce") and option(job, "loss.class_weights") in (None, "null")
            and option(job, "data.sampler") in (None, "null"))


def imbalance_paragraph(summary):
    """What each remedy did to the head and the tail, against plain ce, in words."""
    groups = {group.name: group for group in summary.groups}
    plain = next((g for g in summary.groups if is_plain(g.jobs[0])), None)
    if plain is None:
        return ""
    base_head, base_tail = (statistics.fmean(part) for part in head_and_tail(plain))
    changes = []
    for name, group in groups.items():
        if group is plain:
            continue
        head, tail = (statistics.fmean(part) for part in head_and_tail(group))
        changes.append(f"`{name}` tail {tail - base_tail:+.3f}, head {head - base_head:+.3f}")
    return ("**Head and tail against plain `ce`** (`" + plain.name + f"`: head recall {base_head:.3f}, tail "
            f"{base_tail:.3f}): " + "; ".join(changes) + ". A remedy buys recall on the rare classes and may pay for "
            "it on the common ones; balanced accuracy and macro-F1 weigh every class alike, plain accuracy on a "
            "balanced test split does too, and the ranking above says which trade came out best on validation.")
