"""trainer/drawing.py: text in pictures (any class name a user gives a folder is drawn in a font that has its glyphs:
DejaVu Sans for Latin, Noto Sans CJK for Hangul, kana and Han, with no "missing glyph" warning); the painter process
draws exactly what the run would draw itself, in the order asked, reports a drawing that fails, and when it is gone
the run draws its pictures itself."""
import warnings

import numpy as np
import pytest
import torch
from matplotlib import font_manager
from matplotlib.font_manager import FontProperties

from tests.conftest import run
from tests.datafiles import write_pngs
from trainer.drawing import CJK_FONT, LATIN_FONT, Painter, picture, pixels, text_fonts
from trainer.run.figures import confusion_figure, reliability_figure, top_losses_figure
from trainer.run.tracking import Tracker

NAMES = ["고양이", "강아지", "猫", "ねこ", "cat"]  # Korean, Chinese, Japanese and Latin class names


def font_of(character):
    """The family of the first of text_fonts() that has a glyph for `character` (what matplotlib falls back to),
    or None."""
    for family in text_fonts():
        font = font_manager.get_font(font_manager.findfont(FontProperties(family=family), fallback_to_default=False))
        if font.get_char_index(ord(character)):
            return font.family_name
    return None


def test_latin_text_is_drawn_in_dejavu_sans_and_hangul_and_cjk_in_noto_sans_cjk():
    assert text_fonts() == (LATIN_FONT, CJK_FONT)
    assert {font_of(c) for c in "cat Ag,./" if c != " "} == {LATIN_FONT}
    assert {font_of(c) for name in NAMES[:4] for c in name} == {CJK_FONT}


def drawn_warnings(figure):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pixels(figure)
    return [str(warning.message) for warning in caught]


def test_class_names_in_any_script_are_drawn_without_a_missing_glyph_warning():
    confusion = confusion_figure(torch.eye(len(NAMES), dtype=torch.long), "test split", NAMES)
    assert [label.get_text() for label in confusion.axes[0].get_xticklabels()] == NAMES
    tiles = top_losses_figure([torch.rand(3, 8, 8)] * 2, ["고양이 / 강아지 / 0.91", "猫 / ねこ / 0.55"], "top losses")
    assert drawn_warnings(confusion) == [] and drawn_warnings(tiles) == []


def test_a_character_no_font_has_is_what_matplotlib_warns_about():
    """The check above can fail: a glyph neither font has (a private-use character) is warned about."""
    figure = confusion_figure(torch.eye(2, dtype=torch.long), "test split", ["\ue000", "b"])
    assert any("missing from font" in message for message in drawn_warnings(figure))


def test_a_run_with_hangul_class_folders_draws_their_names(tmp_path, capsys):
    write_pngs(tmp_path / "data", ["cat", "dog"], 8)
    (tmp_path / "data" / "cat").rename(tmp_path / "data" / "고양이")
    (tmp_path / "data" / "dog").rename(tmp_path / "data" / "강아지")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(["data=image_folder", f"data.root={tmp_path / 'data'}", "data.image_size=8", "model=mlp",
             "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu", "data.num_workers=0"],
            tmp_path / "run")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert "missing from font" not in capsys.readouterr().err
    assert "고양이" in (tmp_path / "run" / "top_losses.csv").read_text() or "강아지" in (
        tmp_path / "run" / "top_losses.csv").read_text()
    assert (tmp_path / "run" / "top_losses.png").is_file()


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
