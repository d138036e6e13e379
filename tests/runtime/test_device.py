"""The device a run computes on, and the Runtime that carries it with precision, memory format and bars."""
import pytest
import torch

from tests.conftest import compose_config
from trainer.errors import UserError
from trainer.runtime.device import build_runtime, resolve_device


def test_auto_picks_the_cpu_on_a_machine_without_accelerators():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has an accelerator")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("name,says", [("tpu", "is not a device name"), ("cuda:7", "no CUDA GPU is available")])
def test_a_device_this_machine_lacks_is_one_sentence(name, says):
    if name.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match=f"trainer.device={name} .*{says}"):
        resolve_device(name)


def test_the_runtime_carries_device_precision_memory_format_and_bars_together():
    cfg = compose_config(["data=synthetic", "trainer.device=cpu", "trainer.precision=bf16",
                          "trainer.channels_last=true", "trainer.progress=false"])
    runtime = build_runtime(cfg.trainer, cfg.data.shape)
    assert (runtime.device, runtime.precision.name, runtime.memory_format, runtime.show_progress) == (
        torch.device("cpu"), "bf16", torch.channels_last, False)
    x, y = runtime.to_device(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long))
    assert x.is_contiguous(memory_format=torch.channels_last) and y.device == torch.device("cpu")
