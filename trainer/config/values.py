"""The values a user may set: for every number and switch of losslab's config, its type, that it is finite and its
range, in one table (VALUES). A value outside its rule is one sentence naming the key, what it means, the rule and
an example, before any work starts (`check_values`, called by `validate` and by the data stage).

To add a key: one row in its section of VALUES, e.g. `"patience": whole("the epochs to wait", 5, low=0)` under
"trainer.early_stopping"; a value besides numbers goes in `also` (`also=(AUTO, "tune")`). A key a config lacks is skipped (not every option has every key), so a row may name a key
only some options have; `target=` limits it to the option whose node builds that target.
"""
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, ListConfig, OmegaConf

from trainer.errors import UserError

AUTO = "auto"


@dataclass(frozen=True)
class Rule:
    """What one key accepts. `kind`: "whole" (an int), "number" (an int or a float), "switch" (true or false) or
    "choice" (one of `choices`); never a bool for a number, never nan or inf. The bounds are inclusive unless
    `open_low`/`open_high`. `items`: a list of such values (of exactly `items` entries if it is a number > 0, any
    number of them if it is 0). `also`: values allowed besides (None for null, "auto"). `target`: the rule holds only
    where the key's node builds this target (one option's meaning of a key several options share)."""
    what: str
    example: object
    kind: str = "number"
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    choices: tuple = ()
    items: int | None = None
    also: tuple = ()
    target: str | None = None

    def accepts(self, value: object) -> bool:
        if value is None or isinstance(value, str) and value in self.also:
            return value in self.also
        if self.items is not None:
            values = list(value) if isinstance(value, (list, tuple, ListConfig)) else None
            return values is not None and (self.items == 0 or len(values) == self.items) and all(
                self.accepts_one(v) for v in values)
        return self.accepts_one(value)

    def accepts_one(self, value: object) -> bool:
        if self.kind == "switch":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool) or not isinstance(value, int if self.kind == "whole" else (int, float)):
            return False
        return math.isfinite(value) and self.within(value)

    def within(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        below = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return above and below

    def requirement(self) -> str:
        """e.g. "a whole number >= 1", "a number in (0, 1]", "a list of 2 numbers in [0, 1)", "true or false"."""
        if self.kind == "switch":
            single = "true or false"
        elif self.kind == "choice":
            single = ("one of " if len(self.choices) > 1 else "") + ", ".join(self.choices)
        else:
            single = f"{'a whole number' if self.kind == 'whole' else 'a number'}{self.bounds()}"
        if self.items is not None:
            count = f"{self.items} " if self.items else ""
            single = f"a list of {count}" + single.replace("a whole number", "whole numbers").replace(
                "a number", "numbers")
        parts = [single, *(shown(extra) for extra in self.also)]  # "a number > 0, auto or tune"
        return " or ".join([", ".join(parts[:-1]), parts[-1]]) if len(parts) > 1 else single

    def bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return (f" in {'(' if self.open_low else '['}{shown(self.low)}, {shown(self.high)}"
                    f"{')' if self.open_high else ']'}")
        if self.low is not None:
            return f" {'>' if self.open_low else '>='} {shown(self.low)}"
        if self.high is not None:
            return f" {'<' if self.open_high else '<='} {shown(self.high)}"
        return ""


def shown(value: object) -> str:
    """A value as it is typed on the command line: true, null, 0.5, [1,2]."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, ListConfig)):
        return "[" + ",".join(shown(v) for v in value) + "]"
    return str(value)


def whole(what: str, example: int, **bounds: object) -> Rule:
    return Rule(what, example, kind="whole", **bounds)


def switch(example: bool = True) -> Rule:
    return Rule("it", shown(example), kind="switch")


def choice(what: str, *choices: str, **extra: object) -> Rule:
    return Rule(what, choices[0], kind="choice", choices=choices, **extra)


FRACTION = dict(low=0, high=1, open_high=True)  # from 0 up to, not including, 1
POSITIVE = dict(low=0, open_low=True)
SMALL_CNN = "trainer.models.SmallCNN"

# section -> key -> rule. A section is a dotted path into the composed config ("" for top-level keys); sections are
# checked in this order, so a key other keys interpolate (trainer.epochs, optimizer.lr) is named before them.
# A key whose meaning differs between options has one rule per option (each with its `target`).
VALUES: dict[str, dict[str, Rule | tuple[Rule, ...]]] = {
    "": {"seed": whole("the seed", 0, low=0, high=2**32 - 1)},
    "trainer": {
        "epochs": whole("the number of epochs to train", 20, low=1),
        "log_every_n_steps": whole("the steps between two logged losses", 20, low=1),
        "gradient_clip_val": Rule("the largest global gradient norm", 1.0, **POSITIVE, also=(None,)),
        "progress": switch(),
        "channels_last": switch(),
        "compile": switch(),
    },
    "trainer.early_stopping": {
        "patience": whole("the epochs without an improvement before the run stops", 3, low=1, also=(None,)),
        "min_delta": Rule("the improvement that counts, in the metric's own units", 0.001, low=0),
    },
    "lr_find": {
        "min_lr": Rule("the range test's first rate", 1e-7, **POSITIVE),
        "max_lr": Rule("the range test's last rate", 10, **POSITIVE),
        "steps": whole("the range test's number of batches", 100, low=10),
    },
    "lr_tune": {
        "trials": whole("the search's number of trials", 8, low=1),
        "epochs": whole("the epochs a trial may train (null: trainer.epochs)", 3, low=1, also=(None,)),
        "min_lr": Rule("the search's lowest rate", 1e-5, **POSITIVE),
        "max_lr": Rule("the search's highest rate", 10, **POSITIVE),
        "start_at_default": switch(),
    },
    "data": {
        "imbalance": Rule("the fraction of its training samples the last class keeps (the first keeps all)", 0.01,
                          low=0, open_low=True, high=1, also=(None,)),
        "sampler": choice("the training split's sampler", "balanced", also=(None,)),
        "batch_size": whole("the batch size", 64, low=1),
        "num_workers": whole("the number of loader processes", 0, low=0),
        "label_noise": Rule("the fraction of training labels to replace", 0.4, **FRACTION),
        "cache_budget_gb": Rule("the memory in GB data.cache=auto may fill", 2, low=0),
        "channels": whole("the number of channels", 3, low=1),
        "image_size": whole("the image size in pixels", 32, low=1, also=(None,)),
        "num_classes": whole("the number of classes (or regression targets)", 10, low=1, also=(None,)),
        "normalize": switch(),
        "augment": switch(),
        "download": switch(),
        "max_image_pixels": whole("the most pixels an image may have (a guard against decompression bombs)",
                                  178956970, low=1),
    },
    "data.source": {
        "num_samples": whole("the number of samples", 1000, low=1),
        "noise": Rule("the noise's standard deviation", 0.1, low=0),
        "outlier_fraction": Rule("the fraction of training targets made outliers", 0.1, **FRACTION),
        "heavy_tail": switch(),
    },
    "model": {
        "dropout": Rule("the dropout probability", 0.1, **FRACTION),
        # the small CNN's one hidden layer, the MLP's list of them ([]: a perceptron)
        "hidden": (whole("the hidden layer's width", 128, low=1, target=SMALL_CNN),
                   whole("the hidden layers' widths", "[128]", low=1, items=0, target="trainer.models.MLP")),
        "channels": whole("the convolutions' channels", "[64,30]", low=1, items=0, target=SMALL_CNN),
        "kernel_size": whole("the convolutions' kernel size", 5, low=1, target=SMALL_CNN),
        "padding": whole("the convolutions' padding", 2, low=0, also=(AUTO,), target=SMALL_CNN),
        "backbone_lr_mult": Rule("the backbone's share of the learning rate once unfrozen", 0.1, **POSITIVE),
        "freeze_backbone": switch(),
    },
    "loss.criterion": {
        "label_smoothing": Rule("the label smoothing", 0.1, **FRACTION),
        "margin": Rule("the margin", 1.0, low=0),
        "beta": Rule("the threshold beta", 1.0, low=0),
        "delta": Rule("the threshold delta", 1.0, **POSITIVE),
        "alpha": Rule("the focal loss's alpha (negative: every class alike)", 0.25, high=1),
        "gamma": Rule("the focal loss's gamma", 2.0, low=0),
    },
    "optimizer": {
        "lr": Rule("the learning rate", 0.001, **POSITIVE, also=(AUTO, "tune")),
        "momentum": Rule("the momentum", 0.9, **FRACTION),
        "weight_decay": Rule("the weight decay", 0.01, low=0),
        "betas": Rule("Adam's betas", "[0.9,0.999]", **FRACTION, items=2),
        "alpha": Rule("the smoothing constant", 0.99, low=0),
        "rho": Rule("the decay rate rho", 0.9, low=0, high=1),
        "eps": Rule("the term added for stability", 1e-8, **POSITIVE),
        "nesterov": switch(),
        "max_iter": whole("the iterations per step", 5, low=1),
        "history_size": whole("the update history's length", 10, low=1),
        "line_search_fn": choice("the line search", "strong_wolfe", also=(None,)),
    },
    "scheduler.build": {
        "step_size": whole("the epochs between two rate cuts", 10, low=1),
        "gamma": Rule("the factor the rate is multiplied by", 0.3, **POSITIVE),
        "T_max": whole("the epochs of the cosine's half period", 20, low=1),
        "eta_min": Rule("the lowest rate", 0.0, low=0),
        "max_lr": Rule("the peak rate", 0.01, **POSITIVE, also=(AUTO,)),
        "pct_start": Rule("the warm-up's share of the run", 0.3, low=0, high=1, open_low=True, open_high=True),
        "factor": Rule("the factor the rate is cut by", 0.5, low=0, high=1, open_low=True, open_high=True),
        "patience": whole("the epochs without improvement before a cut", 2, low=0),
        "mode": choice("the direction of the monitored metric", "min", "max"),
    },
}


def check_value(key: str, value: object, rule: Rule) -> None:
    """Raises:
        UserError: `value` breaks `rule`, in one sentence naming `key`, the rule and an example."""
    if not rule.accepts(value):
        raise UserError(f"{key}={shown(value)} is invalid: {rule.what} must be {rule.requirement()}, e.g. "
                        f"{key}={rule.example}")


def check_values(cfg: DictConfig, sections: Mapping[str, Mapping] = VALUES, *, under: str = "",
                 skip: Collection[str] = ()) -> None:
    """Check every key of `sections` that `cfg` has (resolved); `under`: only the sections at or below this one
    (the data stage checks "data"), with `cfg` then that section's own node; `skip`: sections (and those below them)
    this run does not use.

    Raises:
        UserError: the first value that breaks its rule, naming the key.
    """
    for section, rules in sections.items():
        if under and not (section == under or section.startswith(f"{under}.")) or section.split(".")[0] in skip:
            continue
        inner = section[len(under):].lstrip(".")
        node = OmegaConf.select(cfg, inner, default=None) if inner else cfg
        if not OmegaConf.is_dict(node):
            continue
        for key, options in rules.items():
            for rule in options if isinstance(options, tuple) else (options,):
                if key in node and (rule.target is None or node.get("_target_") == rule.target):
                    check_value(f"{section}.{key}".lstrip("."), node[key], rule)
