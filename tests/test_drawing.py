"""The painter process draws exactly what the run would draw itself, in the order asked, reports a drawing that
fails, and when it is gone the run draws its pictures itself."""
import numpy as np
import pytest

from trainer.drawing import Painter, picture
from trainer.run.figures import confusion_figure, reliability_figure
from trainer.run.tracking import Tracker

CONFUSION = {"confusion": np.array([[5, 1], [0, 7]]), "title": "test split"}
CALIBRATION = {"calibration": {"bins": 3, "confidence": [None, 0.5, 0.9], "accuracy": [None, 0.4, 1.0],
                               "count": [0, 3, 7]}, "title": "test split", "ece": 0.07}


@pytest.fixture
def painter():
    found = Painter()
    yield found
    found.close()
    assert found.process.returncode == 0 and not found.folder.exists()  # nothing left behind


def test_the_painter_draws_the_same_png_bytes_as_this_process_in_the_order_asked(painter):
    painter.submit(confusion_figure, CONFUSION)
    painter.submit(reliability_figure, CALIBRATION)
    assert painter.receive() == picture(confusion_figure, CONFUSION)
    assert painter.receive() == picture(reliability_figure, CALIBRATION)


def test_a_drawing_that_fails_in_the_painter_fails_with_its_traceback(painter):
    painter.submit(confusion_figure, {"confusion": np.zeros((2, 2)), "title": "x", "colour": "red"})
    with pytest.raises(RuntimeError, match="(?s)drawing a picture failed:.*unexpected keyword argument 'colour'"):
        painter.receive()
    painter.submit(confusion_figure, CONFUSION)  # and it goes on drawing
    assert painter.receive()[1] == picture(confusion_figure, CONFUSION)[1]


def test_pictures_are_drawn_here_when_the_painter_is_gone(tmp_path, monkeypatch):
    gone = Painter()
    monkeypatch.setattr("trainer.run.tracking.painter", lambda: gone)
    tracker = Tracker(tmp_path)
    tracker.picture("confusion/test", confusion_figure, CONFUSION, 3, save_as="confusion.png")
    gone.process.kill()
    gone.process.wait()
    tracker.picture("reliability/test", reliability_figure, CALIBRATION, 3, save_as="reliability.png")
    tracker.close()
    gone.close()
    assert (tmp_path / "confusion.png").read_bytes() == picture(confusion_figure, CONFUSION)[0]
    assert (tmp_path / "reliability.png").read_bytes() == picture(reliability_figure, CALIBRATION)[0]
