"""trainer.precision: bf16 autocast on the CPU, 16-mixed refused without CUDA, LBFGS refused with a GradScaler."""
import pytest
import torch
from torch import nn

from tests.conftest import run
from trainer.errors import UserError
from trainer.runtime.precision import AUTOCAST_DTYPES, Precision

SMALL = ["data=synthetic", "data.source.num_samples=600", "data.source.noise=0.5", "data.image_size=8",
         "data.batch_size=32", "model=mlp", "trainer.progress=false", "trainer.device=cpu"]


def test_bf16_trains_on_cpu_loss_falls_and_accuracy_beats_chance(tmp_path):
    metrics = run([*SMALL, "trainer.precision=bf16", "trainer.epochs=3"], tmp_path)
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


def test_16_mixed_without_cuda_is_a_user_error_that_suggests_bf16(tmp_path):
    with pytest.raises(UserError, match="trainer.precision=16-mixed needs a CUDA GPU.*bf16"):
        run([*SMALL, "trainer.precision=16-mixed"], tmp_path)


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
def test_lbfgs_with_a_grad_scaler_is_refused():
    precision = Precision("16-mixed", torch.device("cuda"))  # building it needs no GPU; the scaler is the point
    optimizer = torch.optim.LBFGS(nn.Linear(2, 2).parameters())
    with pytest.raises(UserError, match="optimizer=lbfgs.*trainer.precision=32 or bf16"):
        precision.check_optimizer(optimizer)
