"""trainer.channels_last and trainer.compile: they reach the model, and misuse is one sentence."""
import pytest
import torch
from torch import nn

from tests.conftest import run
from trainer.errors import UserError
from trainer.runtime.speed import memory_format, prepare_model

SMALL = ["data=synthetic", "data.source.num_samples=600", "data.source.noise=0.5", "data.image_size=8",
         "data.batch_size=32", "model=mlp", "trainer.progress=false", "trainer.device=cpu", "trainer.epochs=1"]


def test_channels_last_converts_the_weights_and_a_run_with_it_learns(tmp_path):
    model = prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(64, 2)), torch.channels_last,
                          compile=False)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    metrics = run([*SMALL, "model=small_cnn", "trainer.channels_last=true", "trainer.epochs=2"], tmp_path)
    assert metrics["test/acc"] > 0.5  # chance is 0.1


def test_channels_last_on_tabular_data_is_a_user_error():
    with pytest.raises(UserError, match="trainer.channels_last=true needs image data"):
        memory_format(True, [4])
    assert memory_format(False, [4]) is torch.preserve_format


def test_compile_option_compiles_the_model_in_place(tmp_path, monkeypatch):
    # torch.compile takes tens of seconds on this CPU, so the test checks the wiring with a stand-in
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    run([*SMALL, "trainer.compile=true"], tmp_path)
    assert compiled == ["MLP"]
    compiled.clear()
    run(SMALL, tmp_path / "plain")
    assert compiled == []
