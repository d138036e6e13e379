"""Drawing with matplotlib, for every picture losslab writes (a run's and a sweep's): bare Figures on the Agg canvas,
no pyplot, so they draw headless; matplotlib is imported only when a picture is drawn. Every figure is made and
turned into pixels here, so what all pictures share (their text, their canvas) is set in one place.

Text is any name a user can give a class folder, a CSV column or a sweep: it is drawn in DejaVu Sans (matplotlib's
own, for Latin, Greek and Cyrillic), and each character DejaVu Sans lacks in Noto Sans CJK (Hangul, kana and the Han
ideographs of Chinese, Japanese and Korean), which the noto-cjk-sans-otc package ships; matplotlib falls back from one
to the next character by character (font.family as a list). The font families are set in matplotlib's rcParams each
time a figure is made: a Text reads them when it is created, and losslab's process draws nothing else."""
import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LATIN_FONT = "DejaVu Sans"
CJK_FONT = "Noto Sans CJK KR"  # a face of the collection: each holds every CJK glyph, KR draws Hanja as Korea does


@functools.cache
def text_fonts() -> tuple[str, ...]:
    """The font families text is drawn in, in the order matplotlib tries them for each character. The CJK font file
    is registered with matplotlib once per process; without its package, DejaVu Sans alone (CJK text then shows as
    boxes, with matplotlib's warning)."""
    from matplotlib import font_manager

    try:
        from noto_cjk_sans_otc import FONT_PATH
    except ImportError:
        return (LATIN_FONT,)
    font_manager.fontManager.addfont(str(FONT_PATH))
    # an older matplotlib may register the collection's first face (JP) alone; every face has every CJK glyph
    faces = [entry.name for entry in font_manager.fontManager.ttflist if entry.fname == str(FONT_PATH)]
    return LATIN_FONT, CJK_FONT if CJK_FONT in faces else faces[0]


def new_figure(**kwargs: object) -> "Figure":
    """A matplotlib Figure (its keyword arguments: figsize, layout, ...) whose text is drawn in text_fonts()."""
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["font.family"] = list(text_fonts())
    return Figure(**kwargs)


def pixels(figure: "Figure") -> np.ndarray:
    """The figure drawn once, as RGB pixels [height, width, 3] (uint8): what both its PNG and its TensorBoard image
    are made of (drawing is most of what a figure costs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3]
