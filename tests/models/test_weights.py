"""Weights files as other tools save them (trainer/models/weights.py): a state dict wrapped in a checkpoint, its names
prefixed by DistributedDataParallel, torch.compile or a module attribute, a head of another size; all load the same
tensors as the plain file, still with weights_only; anything else is one sentence saying what the file holds."""
import pytest
import torch
from torch import nn
from torchvision.models import get_model

from trainer.errors import UserError
from trainer.models.weights import load_state_dict_file
from trainer.safe_load import load_pt


@pytest.fixture(scope="module")
def mobilenet_state():
    torch.manual_seed(0)
    return get_model("mobilenet_v3_small", weights=None, num_classes=1000).state_dict()  # ImageNet's 1000 classes


def prefixed(state, prefix):
    return {prefix + key: value for key, value in state.items()}


def assert_same_backbone(network, state, head="classifier.3."):
    loaded = network.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items() if not key.startswith(head))


def test_a_resnet18_saved_from_distributed_data_parallel_loads_the_same_backbone_as_the_plain_file(tmp_path, capsys):
    torch.manual_seed(0)
    state = get_model("resnet18", weights=None).state_dict()
    torch.save(state, tmp_path / "plain.pth")
    torch.save(prefixed(state, "module."), tmp_path / "ddp.pth")  # what DDP(model).state_dict() saves
    plain, ddp = (load_state_dict_file("resnet18", tmp_path / name) for name in ("plain.pth", "ddp.pth"))
    assert plain.state_dict().keys() == ddp.state_dict().keys()
    assert all(torch.equal(plain.state_dict()[key], ddp.state_dict()[key]) for key in plain.state_dict()
               if not key.startswith("fc."))
    assert_same_backbone(ddp, state, head="fc.")
    assert (f"model.weights={tmp_path / 'ddp.pth'}: names prefixed 'module.' stripped; its fc (1000 outputs) left "
            "out: the run's own head replaces it") in capsys.readouterr().out


@pytest.mark.parametrize("saved, says", [
    (lambda s: {"state_dict": prefixed(s, "model."), "epoch": 3}, "under 'state_dict'"),  # Lightning
    (lambda s: {"model_state_dict": prefixed(s, "module._orig_mod."), "optimizer": {"lr": 0.1}},
     "names prefixed 'module._orig_mod.' stripped"),  # compiled, then wrapped in DDP
    (lambda s: {"model": prefixed(s, "_orig_mod."), "epoch": 1}, "names prefixed '_orig_mod.' stripped"),
    (lambda s: {"model": {**prefixed({k: v for k, v in s.items() if not k.startswith("classifier.3.")}, "backbone."),
                          "head.weight": torch.zeros(3, 1024), "head.bias": torch.zeros(3)}},
     "2 entries outside the network left out (e.g. head.weight)"),  # a losslab checkpoint
])
def test_wrapped_and_prefixed_state_dicts_load_the_same_tensors(saved, says, mobilenet_state, tmp_path, capsys):
    torch.save(saved(mobilenet_state), tmp_path / "saved.pt")
    assert_same_backbone(load_state_dict_file("mobilenet_v3_small", tmp_path / "saved.pt"), mobilenet_state)
    assert says in capsys.readouterr().out


@pytest.mark.parametrize("content, says", [
    ({"epoch": 3, "optimizer": {"lr": 0.1}}, "holds a dict of 2 entries (epoch, optimizer), not a state dict of "
                                             "mobilenet_v3_small"),
    (torch.zeros(3), "holds one tensor of shape [3], not a state dict"),
    ({"features.0.weight": torch.zeros(1)}, "does not fit model.arch=mobilenet_v3_small: 2"),
])
def test_a_file_without_the_networks_state_dict_is_one_sentence_saying_what_it_holds(content, says, tmp_path):
    torch.save(content, tmp_path / "other.pt")
    with pytest.raises(UserError, match=says.replace("[", "\\[").replace("(", "\\(").replace(")", "\\)")) as error:
        load_state_dict_file("mobilenet_v3_small", tmp_path / "other.pt")
    assert "\n" not in str(error.value)


class Payload:
    def __reduce__(self):
        return (print, ("ran",))


def test_a_whole_pickled_model_or_a_file_that_is_not_torchs_is_one_sentence_saying_what_it_holds(tmp_path):
    torch.save(nn.Linear(2, 2), tmp_path / "full.pt")  # torch.save(model), not its state_dict
    with pytest.raises(UserError, match=r"^model.weights=.*full.pt holds Python objects besides tensors and plain "
                                        r"containers \(it names torch.nn.modules.linear.Linear\), such as a whole "
                                        r"pickled model .*torch.save\(model.state_dict\(\), PATH\)"):
        load_pt(tmp_path / "full.pt", key="model.weights")
    (tmp_path / "notes.pt").write_text("hello\n")
    with pytest.raises(UserError, match=r"notes.pt is not a PyTorch file that can be read: it is empty, truncated"):
        load_pt(tmp_path / "notes.pt", key="model.weights")
    assert "\x1b" not in str(pytest.raises(UserError, load_pt, tmp_path / "full.pt", key="model.weights").value)


def test_a_wrapped_state_dict_is_still_read_with_weights_only(tmp_path, capsys):
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}, "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match=r"evil.pt holds Python objects besides tensors and plain containers \(it names "
                                        r"print\).*losslab never unpickles"):
        load_state_dict_file("mobilenet_v3_small", tmp_path / "evil.pt")
    assert "ran" not in capsys.readouterr().out
