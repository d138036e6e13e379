"""One training epoch and one evaluation pass: the optimizer steps once per batch, batches reach the model in the
run's memory format, and evaluation sums the whole loader."""
import pytest
import torch
from torch import nn

from trainer.device import Runtime
from trainer.loop import evaluate, optimizer_step, train_one_epoch
from trainer.metrics import NonFinite, RunningMetrics
from trainer.optim import Schedule
from trainer.precision import Precision

CPU = torch.device("cpu")


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
    precision = Precision("32", CPU)
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


def epoch(model, batches, **kwargs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    metrics = RunningMetrics(CPU)
    steps = train_one_epoch(model, batches, objective=nn.CrossEntropyLoss(), optimizer=optimizer,
                            schedule=Schedule(None, "epoch", None), metrics=metrics, **kwargs)
    return steps, metrics.compute()


def separable(n=64):
    torch.manual_seed(0)
    x = torch.randn(n, 2)
    return x, (x[:, 0] > 0).long()


def test_an_epoch_learns_counts_its_steps_and_logs_every_n_steps():
    x, y = separable()
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)] * 4
    logged = []
    steps, result = epoch(nn.Linear(2, 2), batches, log_every=10, on_log=lambda step, values: logged.append(step))
    assert steps == 32 and logged == [10, 20, 30]
    assert result["acc"] > 0.9  # a linear boundary


def test_a_run_resumed_mid_epoch_counts_from_its_start_step_and_stops_when_asked():
    x, y = separable()
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)]

    class StopAfterTwo:
        calls = 0

        def requested(self):
            self.calls += 1
            return self.calls >= 2

    steps, _ = epoch(nn.Linear(2, 2), batches, start_step=3, total_steps=11, stop=StopAfterTwo())
    assert steps == 5


def test_a_non_finite_loss_is_noticed_at_the_next_log_step():
    x, y = separable()
    x[10] = float("nan")
    with pytest.raises(NonFinite) as bad:
        epoch(nn.Linear(2, 2), [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)], log_every=3)
    assert bad.value.step == 3 and bad.value.what == "training loss"


def test_batches_reach_the_model_in_the_runtimes_memory_format():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(64, 2)).to(memory_format=torch.channels_last)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    runtime = Runtime(CPU, memory_format=torch.channels_last)
    epoch(model, [(torch.randn(4, 3, 6, 6), torch.randint(0, 2, (4,)))], runtime=runtime)
    evaluate(model, [(torch.randn(4, 3, 6, 6), torch.randint(0, 2, (4,)))], objective=nn.CrossEntropyLoss(),
             runtime=runtime)
    assert seen == [True, True]


def test_evaluate_returns_loss_accuracy_and_confusion_of_the_whole_loader_in_eval_mode():
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.9))  # in eval mode dropout is off: the inputs are the logits
    logits, labels = torch.eye(2)[[0, 1, 1, 1]] * 5, torch.tensor([0, 1, 0, 1])
    loader = [(logits[:3], labels[:3]), (logits[3:], labels[3:])]
    result = evaluate(model, loader, objective=nn.CrossEntropyLoss())
    assert result["confusion"].tolist() == [[1, 1], [0, 2]] and result["acc"] == 0.75
    assert result["loss"] == pytest.approx(nn.CrossEntropyLoss()(logits, labels).item())
    assert not model.training
