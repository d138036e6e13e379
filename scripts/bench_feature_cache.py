"""How much the feature cache saves: epoch times of a frozen-backbone transfer model, cached vs uncached.

Runs the trainer's own pieces (build_run, cache_features, train_one_epoch, evaluate) on synthetic CIFAR-shaped
data with random weights (the timing does not depend on the weights' values), and prints per-epoch seconds:

    python scripts/bench_feature_cache.py                      # resnet18_transfer, 2000 images of 3x32x32
    python scripts/bench_feature_cache.py --model vgg16_transfer --image-size 64 --samples 500

The cached run's first epoch includes the one backbone pass over every split; later epochs train only the head.
"""
import argparse
import statistics
import time

import torch
from hydra import compose, initialize_config_dir

from trainer.config import config_dir
from trainer.device import resolve_device
from trainer.loop import RunningMetrics, evaluate, train_one_epoch
from trainer.optim import build_optimizer, build_schedule
from trainer.train import build_loaders, build_run, seed_everything
from trainer.transfer import cache_features


def epoch_times(overrides, epochs):
    """Seconds per epoch (train + validate); the first includes computing the cached features, if any."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    seed_everything(cfg.seed)
    device = resolve_device(cfg.trainer.device)
    splits, model, objective = build_run(cfg, device)
    times, start = [], time.perf_counter()
    net, splits = cache_features(model, splits, cfg.data, device)
    loaders = build_loaders(splits, cfg.data, cfg.seed, device)
    optimizer = build_optimizer(cfg.optimizer, model)
    schedule = build_schedule(cfg.scheduler, optimizer, len(loaders.train), epochs)
    for epoch in range(epochs):
        train_one_epoch(net, objective, optimizer, loaders.train, device, schedule, RunningMetrics(device),
                        log_every=cfg.trainer.log_every_n_steps)
        val = evaluate(net, objective, loaders.val, device, False, "")
        if device.type == "cuda":
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
              f"trainer.device={args.device}"]
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
