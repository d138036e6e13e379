"""What a run records in TensorBoard: scalars, figures and the hyperparameters of the HParams tab (trainer/run/hparams.py).
Every value is logged at the run's global step (optimizer steps since the run began), so each chart has one x axis;
the `epoch` scalar maps global steps to epochs."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torch.utils.tensorboard import SummaryWriter

from trainer.drawing import painter, picture
from trainer.run.hparams import hparams_summaries

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from matplotlib.figure import Figure


class Tracker:
    """`enabled=False` (ranks other than 0 under torchrun) records nothing, so a run has one events file.
    `purge_step` (a resumed run) hides what an interrupted process logged after its last checkpoint."""

    def __init__(self, run_dir: str | Path, purge_step: int | None = None, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=purge_step) if enabled else None
        self.painting = []  # the pictures sent to the painter, in order: (tag, draw, kwargs, step, save_as)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            if self.writer is not None:
                self.writer.add_scalar(name, value, step)

    def picture(self, tag: str, draw: Callable[..., Figure], kwargs: Mapping[str, object], step: int,
                save_as: str | None = None) -> None:
        """The figure `draw(**kwargs)` makes (a function of trainer/run/figures.py, plain data as arguments) as an image
        under `tag`; `save_as`: also a PNG of that name in the run dir. Drawn by the painter process
        (trainer/drawing.py) while the run goes on, or here when there is none; `finish_pictures` writes them."""
        if self.writer is None:
            return
        found = painter()
        if found is not None:
            try:
                found.submit(draw, kwargs)
                self.painting.append((tag, draw, kwargs, step, save_as))
                return
            except OSError:  # the painter is gone: draw here
                pass
        self._write(tag, picture(draw, kwargs), step, save_as)

    def finish_pictures(self) -> None:
        """Wait for the pictures the painter draws and write them (drawing here any it can no longer draw)."""
        found, waiting, self.painting = painter(), list(self.painting), []  # a second call (close) waits for none
        try:
            while waiting:
                tag, draw, kwargs, step, save_as = waiting[0]
                try:
                    drawn = found.receive() if found is not None else picture(draw, kwargs)
                except (EOFError, OSError):
                    found, drawn = None, picture(draw, kwargs)
                waiting.pop(0)
                self._write(tag, drawn, step, save_as)
        finally:
            if waiting and found is not None:  # stopped midway (a signal, a failed picture): its replies are out of
                found.process.kill()           # step with the next run's requests, so it draws for nobody again
                found.close()

    def _write(self, tag, drawn, step, save_as):
        """The file and TensorBoard's image are the same PNG bytes, drawn and encoded once."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        data, (height, width, channels) = drawn
        if save_as is not None:
            (self.run_dir / save_as).write_bytes(data)
        image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=data)
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def hparams(self, values: Mapping[str, object], metric_tags: Sequence[str],
                swept: Collection[str] = frozenset()) -> None:
        """Record the run's hyperparameters for the HParams tab, next to the scalars logged under `metric_tags` (in
        the order the tab shows them), `swept` naming the keys its sweep varies. Written into this run's own event
        file (SummaryWriter.add_hparams would open a new timestamped sub-run), so TensorBoard shows one run per job,
        named by its folder."""
        if self.writer is None:
            return
        for summary in hparams_summaries(values, metric_tags, swept=swept):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        if self.writer is not None:
            self.finish_pictures()
            self.writer.close()
