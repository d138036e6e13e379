"""Regenerate docs/compare.md, a worked comparison of losses, optimizers' learning rates and remedies for imbalanced
classes, from real runs.

    python scripts/compare.py              # what docs/compare.md shows
    python scripts/compare.py --lr config --noisy none --no-regression --no-optimizers --no-imbalance \
        --set trainer.epochs=5 --out /tmp/compare.md   # a quick look at the losses alone

Runs sweeps through the CLI (`python -m trainer -m ...`, the same command a user types): every loss of --losses
times --seeds seeds on the default data, then the same with the --noisy override (data.label_noise=0.4: 40% of the
training labels replaced by another class); the regression losses on three regression sets; every optimizer of
--optimizers for 5 epochs at its default rate, at optimizer.lr=auto and at optimizer.lr=tune; and ce and focal with
and without class weights and a balanced sampler on a long-tailed training split (scripts/compare_sections.py).
Each sweep's summary (trainer.sweep) gives the tables; its curves.png and reliability_overlay.png are copied next to
the page, into docs/compare/. Every sentence that states a number or a ranking is written from the runs, so the page
says what this code, on this machine, actually did. A sweep folder that exists in --runs is not run again, so an
interrupted regeneration continues with --reuse.
"""
import argparse
import math
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import torch
import yaml

from trainer.config import override_key
from trainer.metrics import ACC, BEST, CHOSEN_LR, ECE, MAE, MAX_GRAD_NORM, NLL, R2, RMSE, TEST, result_key
from trainer.sweep import read_summary
from trainer.sweep.columns import COLUMNS, EPOCHS_TO_TARGET
from trainer.sweep.callback import CURVES, RELIABILITY
from trainer.sweep.report import GROUPS_EXPLAINED, difference_text, group_table, markdown_table, target_line
from trainer.sweep.summary import ranking_text, sweep_monitor

from compare_sections import (LR_MODES, OPTIMIZERS, REMEDIES, imbalance_overrides, imbalance_section,
                              optimizer_overrides, optimizers_section)

REPO = Path(__file__).resolve().parents[1]
TEST_ACC, TEST_NLL, TEST_ECE = result_key(TEST, ACC), result_key(TEST, NLL), result_key(TEST, ECE)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", default="ce,nll,bce,mse,l1",
                        help="loss options, comma-separated, or none to leave out the loss sweeps")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per loss: seed=range(N)")
    parser.add_argument("--lr", default="auto",
                        help="optimizer.lr for every job: auto (each job's range test picks it), a number, or "
                             "config (the optimizer's YAML default)")
    parser.add_argument("--noisy", default="data.label_noise=0.4",
                        help="the override of the second sweep, or none to run only the first")
    parser.add_argument("--set", dest="extra", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more overrides for every sweep (e.g. trainer.epochs=5: the optimizer and imbalance "
                             "sweeps keep their own --optimizer-epochs and --imbalance-epochs)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "compare.md", help="the page to write")
    parser.add_argument("--runs", type=Path, default=None,
                        help="where the sweeps go (default outputs/compare/DATE_TIME); must not exist unless --reuse")
    parser.add_argument("--reuse", action="store_true", help="write the page from the sweeps already in --runs")
    parser.add_argument("--no-regression", dest="regression", action="store_false",
                        help="leave out the regression sweeps (mse, l1, huber, msle on outliers, a heavy tail, diabetes)")
    parser.add_argument("--optimizers", default=OPTIMIZERS, help="the optimizers of the learning-rate section")
    parser.add_argument("--optimizer-epochs", type=int, default=5, help="their trainer.epochs (not --set's)")
    parser.add_argument("--no-optimizers", dest="optimizer_section", action="store_false",
                        help="leave out the optimizers at their default rate, at auto and at tune")
    parser.add_argument("--remedies", default=REMEDIES,
                        help="the imbalanced-data sweep's grid of remedies, space-separated overrides")
    parser.add_argument("--imbalance-epochs", type=int, default=30, help="its trainer.epochs (not --set's)")
    parser.add_argument("--no-imbalance", dest="imbalance", action="store_false",
                        help="leave out the imbalanced-data sweep")
    return parser.parse_args(argv)


# --- running the sweeps ---------------------------------------------------------------------------------------

def sweep_overrides(args, condition):
    lr = [] if args.lr == "config" else [f"optimizer.lr={args.lr}"]
    return [f"loss={args.losses}", f"seed=range({args.seeds})", *lr, *condition, *args.extra]


def run_sweep(sweep_dir, overrides):
    """`python -m trainer -m OVERRIDES` into sweep_dir, its output in sweep_dir.log; exit status 1 (some job
    failed) still leaves a summary to report."""
    command = [sys.executable, "-m", "trainer", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}",
               "trainer.progress=false"]
    print(f"running: train -m {' '.join(overrides)}  (log: {sweep_dir}.log)", flush=True)
    with open(f"{sweep_dir}.log", "w") as log:
        result = subprocess.run(command, cwd=sweep_dir.parent, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode not in (0, 1) or not (sweep_dir / "summary.md").is_file():
        sys.exit(f"error: the sweep exited with status {result.returncode}: see {sweep_dir}.log")


# --- facts the prose states -----------------------------------------------------------------------------------

def by_loss(summary):
    """{loss option: its seed group}, for groups that differ by loss (and seed) only."""
    groups = {}
    for group in summary.groups:
        losses = {o.split("=", 1)[1] for job in group.jobs for o in job.overrides if override_key(o) == "loss"}
        if len(losses) == 1:
            groups[losses.pop()] = group
    return groups


def seed_of(job):
    return next((o.split("=", 1)[1] for o in job.overrides if override_key(o) == "seed"), None)


def mean(group, key):
    found = group.estimates.get(key)
    return None if found is None else found.mean


def fmt(value, spec="{:.3f}"):
    return "–" if value is None else spec.format(value)


def names(groups):
    return ", ".join(f"`{group.name.removeprefix('loss=')}`" for group in groups) or "none"


def epochs_text(group):
    """Epochs to target in words: "4.2", "4.2 (1 of 5 seeds never)" or "never"."""
    found = mean(group, EPOCHS_TO_TARGET)
    if found is None:
        return "never"
    return f"{found:.1f}" + (f" ({group.never} of {len(group.done)} seeds never)" if group.never else "")


def versus_text(group, summary):
    """A group against the best, in words: the difference (or ratio) and its interval, the seeds the best won, the
    test and its Holm-adjusted p."""
    found, ranking = group.comparison, sweep_monitor(summary.jobs)
    if found is None or found.difference is None:
        return f"`{short_name(group)}` –"
    column = next(column for column in COLUMNS if column.key == ranking.best_key)
    wins = f", best ahead in {found.wins} of {found.pairs} seeds" if found.wins is not None else ""
    test = f"; {found.test}, p={found.p_holm:.2g}: {group.verdict}" if found.p_holm is not None else "; not tested"
    return f"`{short_name(group)}` {difference_text(group, column.fmt)}{wins}{test}"


def short_name(group):
    return group.name.removeprefix("loss=")


def ranking_paragraph(summary):
    """Who is on top, and every other group against it: the seed table's comparisons in words."""
    top = summary.groups[0]
    best = sweep_monitor(summary.jobs)
    if best is BEST:
        standing = (f"the best mean validation accuracy ({fmt(mean(top, BEST.best_key), '{:.4f}')}, test accuracy "
                    f"{fmt(mean(top, TEST_ACC), '{:.4f}')})")
    else:
        standing = f"the {ranking_text(best)} ({fmt(mean(top, best.best_key), '{:.4g}')})"
    others = [versus_text(group, summary) for group in summary.groups[1:]]
    worse = [g for g in summary.groups if g.verdict == "worse"]
    return (f"`{top.name}` has {standing}. Against it, seed by seed ({'ratio' if best.compared_by_ratio else 'difference'}"
            f" to the best, its range or interval, Holm-adjusted p): {'; '.join(others) or 'no other group'}. Below "
            f"it beyond the seeds' noise after the correction: {names(worse)}.")


def ce_nll_paragraph(groups):
    """The seeds: CrossEntropyLoss is LogSoftmax followed by NLLLoss. Do the runs agree?"""
    if not {"ce", "nll"} <= groups.keys():
        return None
    nll = {seed_of(job): job.metrics.get(TEST_ACC) for job in groups["nll"].done}
    pairs = [(job.metrics.get(TEST_ACC), nll.get(seed_of(job))) for job in groups["ce"].done]
    gaps = [abs(a - b) for a, b in pairs if a is not None and b is not None]
    if not gaps:
        return None
    same = ("gave exactly the same test accuracy in every seed" if max(gaps) == 0 else
            f"differ by at most {max(gaps):.4f} in test accuracy over the seeds (the two code paths round "
            "differently, and a rounding difference can grow over training)")
    return ("**`CrossEntropyLoss` = `LogSoftmax` + `NLLLoss`.** The seeds write cross-entropy as "
            "−log(exp(x[class]) / Σⱼ exp(x[j])) = −x[class] + log Σⱼ exp(x[j]): a log-softmax followed by the "
            f"negative log-likelihood. `ce` (one fused op) and `nll` (the two written out) {same}, and their rows "
            "and curves coincide: the same function, trained from the same seed.")


def gradient_paragraph(groups, target):
    """Softmax-with-loss has gradient p - y; a loss on probabilities multiplies it by the softmax's Jacobian."""
    known = [loss for loss in ("ce", "mse", "l1", "bce") if loss in groups]
    if "ce" not in known or len(known) < 2:
        return None
    speed = "; ".join(f"`{loss}` {epochs_text(groups[loss])}" for loss in known)
    norms = "; ".join(f"`{loss}` {fmt(mean(groups[loss], MAX_GRAD_NORM), '{:.3g}')}" for loss in known)
    fastest = min((loss for loss in known if mean(groups[loss], EPOCHS_TO_TARGET) is not None),
                  key=lambda loss: mean(groups[loss], EPOCHS_TO_TARGET), default=None)
    if fastest == "ce":
        verdict = "`ce` got there first, in line with its larger gradient on wrong samples."
    elif fastest:
        verdict = (f"`{fastest}` got there first, not `ce`: in these runs the larger gradient did not make `ce` the "
                   "fastest (an adaptive optimizer such as Adam divides each step by the gradient's running size, "
                   "which undoes a constant scale of the loss"
                   + ("" if mean(groups[fastest], CHOSEN_LR) is not None else
                      "; and one learning rate served every loss, where `optimizer.lr=auto` gives each its own")
                   + ").")
    else:
        verdict = ""
    return ("**The gradient of softmax-with-loss is p − y.** Differentiating cross-entropy through the softmax "
            "leaves the predicted probabilities minus the one-hot label: as large as the mistake, never "
            "vanishing while the prediction is wrong. `mse` and `l1` compare the *probabilities* with the label, "
            "so their gradient is (p − y), or its sign, multiplied by the softmax's Jacobian diag(p) − ppᵀ, which "
            "goes to zero as the softmax saturates, even on a confidently wrong sample: at one learning rate they "
            "take smaller steps on the samples they get wrong. Epochs until the validation "
            f"accuracy first reached {fmt(target, '{:.4f}')} (mean over the seeds that got there): {speed}. {verdict}"
            + (f" Largest gradient norm before a step (mean over seeds): {norms}." if "–" not in norms else ""))


def bce_paragraph(groups):
    if "bce" not in groups or "ce" not in groups:
        return None
    bce, ce = groups["bce"], groups["ce"]
    nll = (f", its test NLL {fmt(mean(bce, TEST_NLL))} against {fmt(mean(ce, TEST_NLL))} (the NLL reads each loss's "
           "class probabilities as its config declares them, so it compares across losses where the losses do not)"
           if mean(bce, TEST_NLL) is not None and mean(ce, TEST_NLL) is not None else "")
    return ("**BCE needs a sigmoid.** `BCELoss` takes probabilities, so `bce` puts a sigmoid on every logit and "
            "asks one independent yes/no question per class; nothing makes the answers sum to one, and each wrong "
            "class pushes only its own logit down. Its test accuracy here is "
            f"{fmt(mean(bce, TEST_ACC))} against {fmt(mean(ce, TEST_ACC))} for `ce`{nll}.")


def calibration_paragraph(groups):
    calibrated = sorted((mean(g, TEST_ECE), loss) for loss, g in groups.items() if mean(g, TEST_ECE) is not None)
    if len(calibrated) < 2:
        return None
    ranking = ", ".join(f"`{loss}` {ece:.3f}" for ece, loss in calibrated)
    return ("**Calibration.** Accuracy only asks whether the top class is right; the expected calibration error "
            "asks whether a prediction made with 90% confidence is right 90% of the time (15 equal-width "
            f"bins of the top-label probability). Test ECE, lowest first: {ranking}. The reliability diagram "
            "shows where each loss's confidence and accuracy part: below the diagonal is over-confident.")


def lr_paragraph(groups):
    chosen = [(loss, mean(g, CHOSEN_LR)) for loss, g in groups.items() if mean(g, CHOSEN_LR) is not None]
    if not chosen:
        return None
    return ("**Learning rates.** Every job ran its own range test (`optimizer.lr=auto`) and trained at the rate it "
            "chose, so no loss is ranked by how well a default rate happened to suit it. Mean chosen rate: "
            + ", ".join(f"`{loss}` {lr:.3g}" for loss, lr in chosen) + ".")


def noise_table(clean, noisy):
    header = ["loss", "test acc, clean", "test acc, noisy", "change", "test ECE, clean", "test ECE, noisy"]
    rows = []
    for loss, group in clean.items():
        if loss in noisy:
            before, after = mean(group, TEST_ACC), mean(noisy[loss], TEST_ACC)
            change = None if before is None or after is None else after - before
            rows.append([f"`{loss}`", fmt(before, "{:.4f}"), fmt(after, "{:.4f}"), fmt(change, "{:+.4f}"),
                         fmt(mean(group, TEST_ECE)), fmt(mean(noisy[loss], TEST_ECE))])
    return markdown_table(header, rows)


def noise_paragraph(clean, noisy, noisy_override):
    drops = {loss: mean(clean[loss], TEST_ACC) - mean(noisy[loss], TEST_ACC) for loss in clean
             if loss in noisy and mean(clean[loss], TEST_ACC) is not None and mean(noisy[loss], TEST_ACC) is not None}
    if not drops:
        return None
    least, most = min(drops, key=drops.get), max(drops, key=drops.get)
    text = (f"With `{noisy_override}`, `{least}` lost the least test accuracy ({drops[least]:.4f}) and "
            f"`{most}` the most ({drops[most]:.4f}).")
    if override_key(noisy_override) != "data.label_noise":
        return text
    bounded = [loss for loss in ("l1", "mse") if loss in drops]
    theory = ("**Why a loss can be robust to noisy labels.** A wrong label y on a sample the network already gets "
              "right pulls with cross-entropy's gradient p − y at full strength, and −log p of the wrong class is "
              "unbounded, so the network is paid to memorise the noise. MAE on probabilities (`l1`) is bounded and "
              "symmetric (its losses over all labels sum to a constant), which makes it provably tolerant of "
              "uniform label noise below (K−1)/K (Ghosh, Kumar and Sastry, AAAI 2017); MSE on probabilities is "
              "bounded too. Validation and test labels stay clean, so the accuracies compare across the two "
              "sweeps. ")
    if bounded and "ce" in drops:
        held = [loss for loss in bounded if drops[loss] < drops["ce"]]
        theory += (f"Here {names_of(held)} lost less than `ce`, as the theory predicts." if held else
                   f"Here {names_of(bounded)} did not lose less than `ce`: at this budget the bounded losses' slow "
                   "start (their vanishing gradient) weighs more than their robustness.")
    return theory + " " + text


def names_of(losses):
    return " and ".join(f"`{loss}`" for loss in losses)


# --- the page -------------------------------------------------------------------------------------------------

def setup_line(summary):
    """What every job shared, read from the first job's composed config and Hydra's choices (the groups the sweep
    varies left out)."""
    job_dir = summary.sweep_dir / summary.jobs[0].name / ".hydra"
    config = yaml.safe_load((job_dir / "config.yaml").read_text())
    choices = yaml.safe_load((job_dir / "hydra.yaml").read_text())["hydra"]["runtime"]["choices"]
    varied = {override_key(o) for job in summary.jobs for o in job.overrides if o not in summary.common}
    picked = ", ".join(f"{group}={choices[group]}" for group in ("data", "model", "loss", "optimizer", "scheduler")
                       if group not in varied)
    wall = sum(job.wall_time_s or 0 for job in summary.jobs)
    return (f"Every job: {picked}, {config['trainer']['epochs']} epochs, batch size {config['data']['batch_size']}; "
            f"{len(summary.jobs)} jobs trained for {wall / 60:.1f} min in all on trainer.device="
            f"{config['trainer']['device']} ({platform.machine()}, {os.cpu_count()} cores).")


def copy_pictures(summary, pictures_dir, prefix):
    """The sweep's pictures, copied next to the page; their paths relative to the page's folder."""
    pictures_dir.mkdir(parents=True, exist_ok=True)
    copied = {}
    for name in (CURVES, RELIABILITY):
        if (summary.sweep_dir / name).is_file():
            shutil.copyfile(summary.sweep_dir / name, pictures_dir / f"{prefix}_{name}")
            copied[name] = f"{pictures_dir.name}/{prefix}_{name}"
    return copied


def recorded_overrides(summary):
    """The overrides the sweep ran with, as Hydra recorded them in the sweep dir's multirun.yaml."""
    recorded = yaml.safe_load((summary.sweep_dir / "multirun.yaml").read_text())
    return recorded["hydra"]["overrides"]["task"]


def sweep_section(title, summary, pictures):
    groups = by_loss(summary)
    command = "train -m " + " ".join(recorded_overrides(summary))
    lines = [f"## {title}", "", f"```bash\n{command}\n```", "", setup_line(summary), ""]
    lines += [*target_line(summary), group_table(summary), "", ranking_paragraph(summary), ""]
    if CURVES in pictures:
        lines += [f"![curves: each seed thin, the mean bold, a band that stays in range]({pictures[CURVES]})", ""]
    if RELIABILITY in pictures:
        lines += [f"![reliability diagram of each loss, seeds merged]({pictures[RELIABILITY]})", ""]
    paragraphs = [lr_paragraph(groups), ce_nll_paragraph(groups), gradient_paragraph(groups, summary.target_acc),
                  bce_paragraph(groups), calibration_paragraph(groups)]
    return lines + [text + "\n" for text in paragraphs if text]


def condition_of(clean, noisy):
    """What the second sweep added to the first: its extra overrides."""
    return " ".join(o for o in recorded_overrides(noisy) if o not in recorded_overrides(clean))


def comparison_section(clean, noisy):
    """Clean against noisy: what the second sweep's extra override cost each loss."""
    condition = condition_of(clean, noisy)
    lines = ["## Clean against noisy", "", noise_table(by_loss(clean), by_loss(noisy)), ""]
    paragraph = noise_paragraph(by_loss(clean), by_loss(noisy), condition)
    return lines + ([paragraph, ""] if paragraph else [])


# --- regression: the seeds' claims about MSE, MAE, Huber and MSLE ------------------------------------------------

# (folder, title, overrides, losses, the seeds' claim the section checks)
REGRESSION = (
    ("outliers", "Regression with 20% outlier targets",
     ["data=synthetic_regression", "data.source.outlier_fraction=0.2"], "mse,l1,huber",
     "MAE gives a prediction far off less penalty than MSE, so gross errors in the training targets should pull an "
     "MAE or Huber model less: lower test MAE on the clean test split"),
    ("heavy_tail", "Regression with a heavy-tailed, positive target",
     ["data=synthetic_regression", "data.source.heavy_tail=true", "data.source.noise=0.5"], "mse,l1,huber,msle",
     "MSLE softens the penalty when prediction and target are both large, for targets with a large spread"),
    ("diabetes", "Regression on diabetes", ["data=diabetes"], "mse,l1,huber,msle",
     "MSE and MAE for a real value; on real data the seeds make no ranking claim"),
)
TEST_RMSE, TEST_MAE, TEST_R2 = result_key(TEST, RMSE), result_key(TEST, MAE), result_key(TEST, R2)


def regression_overrides(args, overrides, losses):
    return ["model=mlp", f"loss={losses}", f"seed=range({args.seeds})", "optimizer.lr=auto", "trainer.epochs=20",
            *overrides]


def regression_section(title, summary, claim, pictures):
    groups = by_loss(summary)
    lines = sweep_section(title, summary, pictures)
    numbers = "; ".join(f"`{loss}` MAE {fmt(mean(g, TEST_MAE), '{:.4g}')}, RMSE {fmt(mean(g, TEST_RMSE), '{:.4g}')}, "
                        f"R² {fmt(mean(g, TEST_R2))}" for loss, g in groups.items())
    best_mae = min(groups, key=lambda loss: mean(groups[loss], TEST_MAE) or math.inf, default=None)
    lines += [f"**The seeds' claim.** {claim}. Test means over the seeds: {numbers}. Lowest test MAE: "
              f"`{best_mae}`; ranked by validation RMSE: `{summary.groups[0].name.removeprefix('loss=')}` first.", ""]
    return lines


def regression_sections(runs, pictures_dir):
    lines = []
    for name, title, _, _, claim in REGRESSION:
        if (runs / name / "summary.md").is_file():
            summary = read_summary(runs / name)
            lines += regression_section(title, summary, claim, copy_pictures(summary, pictures_dir, name))
    return lines


def page(runs, *, pictures_dir, argv, args):
    """The whole of docs/compare.md, from the sweeps in `runs` (clean/, and the others when they were run)."""
    sweeps = {name: read_summary(runs / name) for name in ("clean", "noisy") if (runs / name / "summary.md").is_file()}
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    lines = ["# Which loss is better, and by how much: a worked comparison", "",
             "<!-- generated by scripts/compare.py from real runs: do not edit by hand, rerun it -->", "",
             f"Generated on {datetime.now():%Y-%m-%d} by `{' '.join(['python scripts/compare.py', *argv])}` "
             f"(losslab {commit.stdout.strip() or '?'}, torch {torch.__version__}). Every configuration trains with "
             f"{args.seeds} seeds; a seed changes the data split, the initialisation and the batch order, so the spread "
             "over seeds is the noise any single run carries.", "", "How to read the tables: " + GROUPS_EXPLAINED, ""]
    clean = sweeps.get("clean")
    if clean is not None:
        lines += sweep_section("Clean labels", clean, copy_pictures(clean, pictures_dir, "clean"))
    if clean is not None and "noisy" in sweeps:
        noisy = sweeps["noisy"]
        lines += sweep_section(f"With `{condition_of(clean, noisy)}`", noisy, copy_pictures(noisy, pictures_dir, "noisy"))
        lines += comparison_section(clean, noisy)
    lines += regression_sections(runs, pictures_dir)
    lines += optimizers_section(runs, args, describe=setup_line)
    imbalance = (runs / "imbalance" / "summary.md").is_file()
    lines += imbalance_section(runs, copy_pictures(read_summary(runs / "imbalance"), pictures_dir, "imbalance").get(
        CURVES) if imbalance else None, describe=setup_line)
    return "\n".join(lines)


def more_sweeps(args):
    """(folder, overrides) of the sweeps after the clean and noisy ones: regression, optimizers, imbalance."""
    sweeps = [(name, regression_overrides(args, overrides, losses)) for name, _, overrides, losses, _ in REGRESSION
              if args.regression]
    if args.optimizer_section:
        sweeps += [(f"optimizers_{mode}", optimizer_overrides(args, lr)) for mode, _, lr in LR_MODES]
    return sweeps + ([("imbalance", imbalance_overrides(args))] if args.imbalance else [])


def command_line(argv):
    """The arguments that regenerate the page from scratch: without --reuse and where the sweeps were kept."""
    kept, skip = [], False
    for arg in argv:
        if not skip and arg != "--reuse" and not arg.startswith("--runs"):
            kept.append(arg)
        skip = arg == "--runs"
    return kept


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    runs = (args.runs or Path("outputs") / "compare" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}").resolve()
    conditions = ({} if args.losses == "none" else {"clean": []} | ({} if args.noisy == "none" else
                                                                    {"noisy": [args.noisy]}))
    if not args.reuse:
        if runs.exists():
            sys.exit(f"error: --runs {runs} exists: pass a new folder, or --reuse to write the page from its sweeps")
        runs.mkdir(parents=True)
        for name, condition in conditions.items():
            run_sweep(runs / name, sweep_overrides(args, condition))
    for name, overrides in more_sweeps(args):  # also with --reuse: sweeps a folder does not have yet
        if not (runs / name).exists():
            run_sweep(runs / name, overrides)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page(runs, pictures_dir=args.out.parent / args.out.stem, argv=command_line(argv), args=args))
    print(f"wrote {args.out} from the sweeps in {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
