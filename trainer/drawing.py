"""Drawing with matplotlib, for every picture losslab writes (a run's and a sweep's): bare Figures on the Agg canvas,
no pyplot, so they draw headless and leave no global state; matplotlib is imported only when a picture is drawn.
Every figure is made and turned into pixels and PNG bytes here, so what all pictures share (their text, their
canvas, their size) is set in one place.

Text is any name a user can give a class folder, a CSV column or a sweep: it is drawn in DejaVu Sans (matplotlib's
own, for Latin, Greek and Cyrillic), and each character DejaVu Sans lacks in Noto Sans CJK (Hangul, kana and the Han
ideographs of Chinese, Japanese and Korean), which the noto-cjk-sans-otc package ships; matplotlib falls back from one
to the next character by character (font.family as a list). The font families are set in matplotlib's rcParams each
time a figure is made: a Text reads them when it is created, and losslab's process draws nothing else.

A run's pictures are also TensorBoard images, which its image cards show about 330 px wide: `card_figure` draws them
at a size that card shows at nearly their own, with text large enough to read there.

A run draws its pictures in a `Painter`: a process of its own, started when the run begins, which imports matplotlib
and loads its fonts (most of what the first picture costs) while the run imports torch and prepares its data on the
other core, and draws the test split's pictures while the run finishes its own work.
"""
import atexit
import functools
import importlib
import io
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LATIN_FONT = "DejaVu Sans"
CJK_FONT = "Noto Sans CJK KR"  # a face of the collection: each holds every CJK glyph, KR draws Hanja as Korea does
CARD_DPI = 100  # 3.8 inches are 380 px: a card of about 330 px shows them at 0.87 of their size


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
    """A matplotlib Figure (its keyword arguments: figsize, dpi, layout, ...) whose text is drawn in text_fonts()."""
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["font.family"] = list(text_fonts())
    return Figure(**kwargs)


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


def picture(draw: Callable[..., "Figure"], kwargs: dict) -> tuple[bytes, tuple[int, int, int]]:
    """(PNG bytes, (height, width, channels)) of the figure `draw(**kwargs)` makes."""
    image = pixels(draw(**kwargs))
    return encode_png(image), image.shape


# --- the painter process ----------------------------------------------------------------------------------------

class Painter:
    """A process that draws pictures for this one: `submit` sends what to draw (a function of a trainer module and
    its keyword arguments: plain data, numpy arrays), `receive` returns the pictures in the order they were sent.
    Messages are pickled: both ends are this package, never a file a user was handed. The painter writes each PNG
    into a folder of its own and replies with a few bytes, so neither side ever waits on a full pipe."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[1])  # the painter imports this very copy of the package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.folder = Path(tempfile.mkdtemp(prefix="losslab-painter-"))
        self.sent = 0
        self.process = subprocess.Popen([sys.executable, "-c", "from trainer.drawing import serve; serve()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def submit(self, draw: Callable[..., "Figure"], kwargs: dict) -> None:
        """Raises OSError when the painter is gone."""
        self.sent += 1
        _send(self.process.stdin, (draw.__module__, draw.__qualname__, kwargs, str(self.folder / f"{self.sent}.png")))

    def receive(self) -> tuple[bytes, tuple[int, int, int]]:
        """The next picture. Raises EOFError when the painter is gone, RuntimeError when drawing failed there."""
        done, result = _receive(self.process.stdout)
        if not done:
            raise RuntimeError(f"drawing a picture failed:\n{result}")
        path, shape = result
        data = Path(path).read_bytes()
        Path(path).unlink()
        return data, shape

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


_painter: list = []  # this process's painter, started once and shared by the runs of a sweep


def start_painter() -> None:
    """Start this process's painter if it has none (it closes when the process exits). A machine that cannot start
    one draws in the run's own process."""
    if not _painter:
        try:
            _painter.append(Painter())
        except OSError:
            _painter.append(None)
            return
        atexit.register(_painter[0].close)


def painter() -> "Painter | None":
    """This process's painter, or None (never started, or gone: the run then draws itself)."""
    found = _painter[0] if _painter else None
    return found if found is not None and found.process.poll() is None else None


def serve() -> None:
    """The painter's loop: import matplotlib and draw a first figure (fonts, caches), then draw what arrives until
    the run closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; the painter ends with its pipe
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the pipe carries pictures only
    picture(_warm_up, {})
    while True:
        try:
            module, name, kwargs, path = _receive(requests)
        except EOFError:  # the run closed the pipe: every picture is written, nothing is left to tear down
            sys.stderr.flush()
            os._exit(0)
        try:
            data, shape = picture(getattr(importlib.import_module(module), name), kwargs)
            Path(path).write_bytes(data)
            reply = (True, (path, shape))
        except Exception:
            reply = (False, traceback.format_exc())
        _send(replies, reply)


def _warm_up() -> "Figure":
    figure = card_figure(1, 1)
    ax = figure.subplots()
    ax.imshow(np.eye(2), cmap="Blues")
    ax.set_title("0.5", fontsize=8)
    return figure


def _send(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream) -> object:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the painter's pipe closed")
    (size,) = struct.unpack("<Q", header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the painter's pipe closed")
    return pickle.loads(data)
