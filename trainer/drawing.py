"""Drawing with matplotlib, for every picture losslab writes (a run's and a sweep's): bare Figures on the Agg canvas,
no pyplot, so they draw headless and leave no global state; matplotlib is imported only when a picture is drawn.
Every figure is made and turned into pixels here, so what all pictures share (their text, their canvas) is set in
one place.

A run's pictures are also TensorBoard images, which its image cards show about 330 px wide: they are drawn at
CARD_DPI, a size that card shows at nearly its own, with text large enough to read there."""
import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CARD_DPI = 100  # 3.8 inches are 380 px: a card of about 330 px shows them at 0.87 of their size


def new_figure(**kwargs: object) -> "Figure":
    """A matplotlib Figure (its keyword arguments: figsize, dpi, layout, ...)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def pixels(figure: "Figure") -> np.ndarray:
    """The figure drawn once, as RGB pixels [height, width, 3] (uint8): what both its PNG and its TensorBoard image
    are made of (drawing is most of what a figure costs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]


def encode_png(image: np.ndarray) -> bytes:
    """RGB pixels [height, width, 3] (uint8) as a PNG file's bytes (Pillow; zlib level 1: a few percent larger than
    the default level, several times faster to write)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def card_figure(width: float, height: float, **kwargs: object) -> "Figure":
    """A figure of `width` x `height` inches at CARD_DPI: a picture that TensorBoard's image card shows at about its
    own size (its text stays readable there)."""
    return new_figure(figsize=(width, height), dpi=CARD_DPI, **kwargs)


def set_margins(figure: "Figure", *, left: float, right: float, top: float, bottom: float, **spacing: float) -> None:
    """Fixed margins in inches (room for labels and titles), instead of a layout engine: a layout engine draws the
    text once more to measure it, which doubles what a figure costs."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                           **spacing)
