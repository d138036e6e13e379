"""How much the feature cache saves: epoch times of a frozen-backbone transfer model, cached vs uncached.

Assembles the run as trainer.train does (trainer.assemble: the feature cache is the model's own training view) on
synthetic CIFAR-shaped data with random weights (the timing does not depend on the weights' values), and prints
per-epoch seconds:

    python scripts/bench_feature_cache.py                      # resnet18_transfer, 2000 images of 3x32x32
    python scripts/bench_feature_cache.py --model vgg16_transfer --image-size 64 --samples 500

The cached run's first epoch includes the one backbone pass over every split; later epochs train only the head.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from trainer.config import config_dir  # noqa: E402
from trainer.metrics.running import RunningMetrics  # noqa: E402
from trainer.run.assemble import assemble  # noqa: E402
from trainer.run.loop import evaluate, train_one_epoch  # noqa: E402


def epoch_times(overrides, epochs):
    """Seconds per epoch (train + validate); the first includes building the run, and so computing the cached
    features, if any."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, f"trainer.epochs={epochs}"])
    times, start = [], time.perf_counter()
    parts = assemble(cfg)
    for _ in range(epochs):
        train_one_epoch(parts.train_net, parts.loaders.train, objective=parts.objective, optimizer=parts.optimizer,
                        schedule=parts.schedule, metrics=RunningMetrics(parts.runtime.device), runtime=parts.runtime,
                        log_every=cfg.trainer.log_every_n_steps)
        val = evaluate(parts.net, parts.loaders.val, objective=parts.objective, runtime=parts.runtime)
        if parts.runtime.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return times, val


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_transfer")
    parser.add_argument("--samples", type=int, default=2000, help="synthetic images (70%% train, 15%% val, 15%% test)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    common = [f"model={args.model}", "model.weights=null", "data=synthetic", f"data.image_size={args.image_size}",
              f"data.source.num_samples={args.samples}", f"data.batch_size={args.batch_size}",
              f"trainer.device={args.device}", "trainer.progress=false"]
    print(f"{args.model}, {args.samples} synthetic images of 3x{args.image_size}x{args.image_size}, batch "
          f"{args.batch_size}, {args.epochs} epochs, torch threads {torch.get_num_threads()}")
    results = {}
    for setting in ("false", "true"):
        times, val = epoch_times([*common, f"model.cache_features={setting}"], args.epochs)
        later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        results[setting] = (times, later, val)
        print(f"cache_features={setting:5}  first epoch {times[0]:8.3f} s   later epochs {later:8.4f} s (median)   "
              f"total {sum(times):8.3f} s   val loss {val['loss']:.5f}")
    (full, full_later, _), (cached, cached_later, _) = results["false"], results["true"]
    print(f"speed-up: later epochs {full_later / cached_later:.0f}x, whole run {sum(full) / sum(cached):.1f}x; "
          f"a cached later epoch costs {100 * cached_later / cached[0]:.2f}% of its first")


if __name__ == "__main__":
    main()
