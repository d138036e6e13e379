"""One training epoch and one evaluation pass: the optimizer steps once per batch, the gradients' norm is measured
(and clipped) on true gradients, batches reach the model in the run's memory format, and evaluation sums the whole
loader."""
import pytest
import torch
from torch import nn

from trainer.losses import Objective
from trainer.metrics import GRAD_NORM_MAX, GRAD_NORM_MEAN, GRAD_NORM_STEP
from trainer.metrics.running import RunningMetrics
from trainer.optim import Schedule
from trainer.run.divergence import NonFinite
from trainer.run.loop import evaluate, gradient_norm, optimizer_step, train_one_epoch
from trainer.runtime.device import Runtime
from trainer.runtime.precision import Precision

CPU = torch.device("cpu")
CE = Objective(nn.CrossEntropyLoss(), "identity", "index", 2)


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
        loss, logits, norm = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x[start:start + 5],
                                            y[start:start + 5], precision)
    assert CountingSGD.steps == 4 and len(forwards) == 4
    assert not torch.equal(model.weight, before)
    assert torch.isfinite(loss) and logits.shape == (5, 3) and norm > 0
    if scaled:
        assert precision.scaler.get_scale() == 1024.0  # finite gradients: the scale was kept, the steps were taken


def true_norm(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()]).norm()


@pytest.mark.parametrize("scaled", [False, True])
def test_the_gradient_norm_is_of_the_true_gradients_before_clipping_and_clipping_caps_it(scaled):
    torch.manual_seed(0)
    model, reference = nn.Linear(6, 3), nn.Linear(6, 3)
    reference.load_state_dict(model.state_dict())
    x, y = torch.randn(8, 6) * 10, torch.randint(0, 3, (8,))
    nn.CrossEntropyLoss()(reference(x), y).backward()
    precision = Precision("32", CPU)
    if scaled:
        precision.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    CountingSGD.steps = 0
    optimizer = CountingSGD(model.parameters(), lr=0.0)  # lr 0: the gradients stay to be looked at
    _, _, norm = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x, y, precision, clip=0.5)
    assert norm.item() == pytest.approx(true_norm(reference).item(), rel=1e-5) and norm.item() > 1
    assert true_norm(model).item() == pytest.approx(0.5, rel=1e-4)  # scaled down to the clip value
    assert CountingSGD.steps == 1


def test_lbfgs_re_evaluates_the_loss_but_steps_once_and_reports_the_first_gradient_norm():
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    nn.CrossEntropyLoss()(model(x), y).backward()
    first = true_norm(model).item()
    model.zero_grad()
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=5, line_search_fn="strong_wolfe")
    _, _, norm = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x, y, clip=10.0)
    assert len(forwards) > 1 and norm.item() == pytest.approx(first, rel=1e-5)
    assert optimizer.state[optimizer._params[0]]["n_iter"] == 5  # one step of max_iter iterations


def test_the_gradient_norm_of_an_optimizer_without_gradients_is_zero():
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    assert gradient_norm(optimizer).item() == 0.0


@pytest.mark.parametrize("clip", [None, 1e9])
def test_the_epochs_gradient_norms_are_the_exact_norms_at_its_log_steps_and_its_last_step(clip):
    """An epoch of 9 steps logging every 4 (at steps 4 and 8 of the run) measures the norm there and at its last
    step, exactly as torch computes it, whether or not clipping measures every step; the others cost nothing."""
    x, y = separable(72)
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 72, 8)]
    torch.manual_seed(1)
    model = nn.Linear(2, 2)
    twin = nn.Linear(2, 2)
    twin.load_state_dict(model.state_dict())
    twin_sgd, norms = torch.optim.SGD(twin.parameters(), lr=0.5), []
    for bx, by in batches:  # the same steps by hand, every step's norm
        twin_sgd.zero_grad()
        nn.functional.cross_entropy(twin(bx), by).backward()
        norms.append(torch.nn.utils.get_total_norm([p.grad for p in twin.parameters()]).item())
        twin_sgd.step()
    logged = {}
    _, result = epoch(model, batches, log_every=4, total_steps=9, clip=clip,
                      on_log=lambda step, values: logged.update({step: values[GRAD_NORM_STEP]}))
    measured = [norms[3], norms[7], norms[8]]  # steps 4, 8 (logged) and 9 (the epoch's last)
    assert logged == pytest.approx({4: norms[3], 8: norms[7]}, rel=1e-6)
    assert result[GRAD_NORM_MEAN] == pytest.approx(sum(measured) / 3, rel=1e-6)
    assert result[GRAD_NORM_MAX] == pytest.approx(max(measured), rel=1e-6)
    assert len(set(norms)) == 9  # so a norm of another step would have shown


def test_a_step_that_is_not_measured_computes_no_norm():
    model, x, y = nn.Linear(3, 2), torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss, _, norm = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x, y, measure=False)
    assert norm is None and loss.item() > 0
    _, _, clipped = optimizer_step(model, nn.CrossEntropyLoss(), optimizer, x, y, clip=0.01, measure=False)
    assert clipped is None  # clipped all the same (test_clipping_...), but not reported
    assert torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item() == pytest.approx(0.01, rel=1e-4)


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
    steps, result = epoch(nn.Linear(2, 2), batches, log_every=10, on_log=lambda step, values: logged.append(
        (step, sorted(values))))
    assert steps == 32 and logged == [(step, sorted(["loss/train_step", GRAD_NORM_STEP])) for step in (10, 20, 30)]
    assert result["acc"] > 0.9  # a linear boundary
    assert 0 < result[GRAD_NORM_MEAN] <= result[GRAD_NORM_MAX]


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
    evaluate(model, [(torch.randn(4, 3, 6, 6), torch.randint(0, 2, (4,)))], objective=CE, runtime=runtime)
    assert seen == [True, True]


def test_evaluate_returns_loss_accuracy_and_confusion_of_the_whole_loader_in_eval_mode():
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.9))  # in eval mode dropout is off: the inputs are the logits
    logits, labels = torch.eye(2)[[0, 1, 1, 1]] * 5, torch.tensor([0, 1, 0, 1])
    loader = [(logits[:3], labels[:3]), (logits[3:], labels[3:])]
    result = evaluate(model, loader, objective=CE, keep_outputs=True)
    assert result["confusion"].tolist() == [[1, 1], [0, 2]] and result["acc"] == 0.75
    assert result["loss"] == pytest.approx(nn.CrossEntropyLoss()(logits, labels).item())
    assert result["nll"] == pytest.approx(result["loss"], abs=1e-6)  # ce: the NLL is the loss
    assert torch.equal(result["logits"], logits) and torch.equal(result["labels"], labels)
    assert not model.training
