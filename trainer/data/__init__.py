"""Data: where samples come from and how they reach the loop.

- `stage`: `prepare_data(cfg)`, the data stage of a run in one call: the source's splits, then the data's facts
  filled into the config (class count, image size, normalisation statistics, target statistics), caching, label
  noise and augmentation, in the order they happen.
- the sources, a data config's `source` (each returns `Splits`): `sources` (scikit-learn's digits, iris and
  diabetes; generated data), `torchvision_sets` (CIFAR-10, MNIST, ...), `folders` (your own image folders;
  `scan` decides which of their files are read); `images` decodes images for both (`FileDecoder`: every file);
  `tables` (your own table: data=csv), which reads it with `table_files` and fits and applies its `preprocessing`.
- `unlabelled`: new inputs for a trained model (mode=predict), a table's rows or image files, preprocessed as the
  model's training data was.
- `splits` (`Splits`, the seeded split, the checks), `loaders` (batches for the loop), `cache`, `normalization`,
  `labels` (label noise, target statistics), `balance` (a long-tailed training split, class counts, the balanced
  sampler's weights): the steps of the stage.

The image sources import torchvision and the table pandas, so they load on first use: a run imports only what its
data needs.
"""
from trainer._lazy import lazy_exports
from trainer.data.balance import long_tail_counts, sampler_weights
from trainer.data.loaders import TensorLoader, epoch_batches, make_loader, worker_failures_explained
from trainer.data.sources import diabetes, digits, iris, synthetic, synthetic_regression
from trainer.data.splits import Splits, labels_of, split_indices, split_tensors
from trainer.data.stage import prepare_data

__getattr__ = lazy_exports(__name__, {"FileDecoder": "images", "image_folder": "folders",
                                      "torchvision_dataset": "torchvision_sets", "table": "tables",
                                      "new_inputs": "unlabelled"})

__all__ = ["FileDecoder", "diabetes", "digits", "epoch_batches", "image_folder", "iris", "labels_of", "long_tail_counts",
           "make_loader", "new_inputs", "prepare_data", "sampler_weights", "split_indices", "split_tensors", "Splits",
           "synthetic", "synthetic_regression", "table", "TensorLoader", "torchvision_dataset",
           "worker_failures_explained"]
