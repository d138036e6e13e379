"""trainer.precision, trainer.channels_last and trainer.compile, and the loop's per-step bookkeeping."""
import pytest
import torch
from torch import nn

from trainer.errors import UserError
from trainer.loop import RunningMetrics, optimizer_step, train_one_epoch
from trainer.optim import Schedule
from trainer.precision import AUTOCAST_DTYPES, Precision
from trainer.speed import memory_format, prepare_model
from trainer.train import train

SMALL = ["data=synthetic", "data.source.num_samples=600", "data.source.noise=0.5", "data.image_size=8",
         "data.batch_size=32", "model=mlp"]


def test_bf16_trains_on_cpu_loss_falls_and_accuracy_beats_chance(cfg_factory, tmp_path):
    metrics = train(cfg_factory(*SMALL, "trainer.precision=bf16", "trainer.epochs=3"), tmp_path)
    losses = [epoch["loss/train"] for epoch in metrics["history"]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert metrics["test/acc"] > 0.5  # chance is 0.1


def test_bf16_autocasts_the_forward_pass_to_bfloat16():
    precision = Precision("bf16", torch.device("cpu"))
    with precision.autocast():
        out = nn.Linear(4, 2)(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    with Precision(32).autocast():
        assert nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.float32


def test_every_precision_option_is_known_and_a_typo_names_the_key():
    assert set(AUTOCAST_DTYPES) == {"32", "bf16", "16-mixed"}
    with pytest.raises(UserError, match="trainer.precision=fp8 is not known"):
        Precision("fp8", torch.device("cpu"))


def test_16_mixed_without_cuda_is_a_user_error_that_suggests_bf16(cfg_factory, tmp_path):
    with pytest.raises(UserError, match="trainer.precision=16-mixed needs a CUDA GPU.*bf16"):
        train(cfg_factory(*SMALL, "trainer.precision=16-mixed"), tmp_path)


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
def test_lbfgs_with_a_grad_scaler_is_refused():
    precision = Precision("16-mixed", torch.device("cuda"))  # building it needs no GPU; the scaler is the point
    optimizer = torch.optim.LBFGS(nn.Linear(2, 2).parameters())
    with pytest.raises(UserError, match="optimizer=lbfgs.*trainer.precision=32 or bf16"):
        precision.check_optimizer(optimizer)


class CountingSGD(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        CountingSGD.steps += 1
        return super().step(closure)


@pytest.mark.parametrize("scaled", [False, True])
def test_the_optimizer_steps_exactly_once_per_batch_with_or_without_a_grad_scaler(scaled):
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    precision = Precision("32", torch.device("cpu"))
    if scaled:  # a CPU GradScaler stands in for CUDA's: the same scale, unscale, step-once and update logic
        precision.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    CountingSGD.steps = 0
    optimizer = CountingSGD(model.parameters(), lr=0.1)
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    before = model.weight.detach().clone()
    for start in range(0, 20, 5):
        loss, logits = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x[start:start + 5], y[start:start + 5],
                                      precision)
    assert CountingSGD.steps == 4 and len(forwards) == 4
    assert not torch.equal(model.weight, before)
    assert torch.isfinite(loss) and logits.shape == (5, 3)
    if scaled:
        assert precision.scaler.get_scale() == 1024.0  # finite gradients: the scale was kept, the steps were taken


def test_running_metrics_weight_every_sample_equally_over_uneven_batches():
    metrics = RunningMetrics(torch.device("cpu"))
    # batch of 3 with mean loss 1.0 and 2 hits, batch of 1 with loss 5.0 and 0 hits
    metrics.update(torch.tensor(1.0), torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), torch.tensor([1, 0, 1]))
    assert float(metrics.running()["acc"]) == pytest.approx(2 / 3, abs=1e-3)
    metrics.update(torch.tensor(5.0), torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    assert metrics.compute() == pytest.approx({"loss": (3 * 1.0 + 5.0) / 4, "acc": 2 / 4})


def test_channels_last_converts_the_weights_and_the_batches(cfg_factory, tmp_path):
    model = prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(64, 2)), torch.channels_last,
                          compile=False)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    loader = [(torch.randn(4, 3, 6, 6), torch.randint(0, 2, (4,)))]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, nn.CrossEntropyLoss(), optimizer, loader, torch.device("cpu"), Schedule(None, "epoch", None),
                    RunningMetrics(torch.device("cpu")), memory_format=torch.channels_last)
    assert seen == [True]
    # and the option reaches the model in a real run
    metrics = train(cfg_factory(*SMALL, "model=small_cnn", "trainer.channels_last=true"), tmp_path)
    assert 0 <= metrics["test/acc"] <= 1


def test_channels_last_on_tabular_data_is_a_user_error():
    with pytest.raises(UserError, match="trainer.channels_last=true needs image data"):
        memory_format(True, [4])
    assert memory_format(False, [4]) is torch.preserve_format


def test_compile_option_compiles_the_model_in_place(cfg_factory, tmp_path, monkeypatch):
    # torch.compile takes tens of seconds on this CPU, so the test checks the wiring with a stand-in
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *a, **k: compiled.append(type(self).__name__))
    train(cfg_factory(*SMALL, "trainer.compile=true"), tmp_path)
    assert compiled == ["MLP"]
    compiled.clear()
    train(cfg_factory(*SMALL), tmp_path / "plain")
    assert compiled == []
