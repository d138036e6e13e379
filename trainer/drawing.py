"""Drawing with matplotlib, for every picture losslab writes (a run's and a sweep's): bare Figures on the Agg canvas,
no pyplot, so they draw headless and leave no global state; matplotlib is imported only when a picture is drawn.
Every figure is made and turned into pixels here, so what all pictures share (their text, their canvas) is set in
one place."""
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(**kwargs: object) -> "Figure":
    """A matplotlib Figure (its keyword arguments: figsize, layout, ...)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def pixels(figure: "Figure") -> np.ndarray:
    """The figure drawn once, as RGB pixels [height, width, 3] (uint8): what both its PNG and its TensorBoard image
    are made of (drawing is most of what a figure costs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]
