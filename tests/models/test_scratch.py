import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from tests.conftest import compose_config
from trainer.config import build
from trainer.errors import UserError
from trainer.models import ACTIVATIONS, MLP, SmallCNN


def test_small_cnn_on_cifar_shapes_is_the_seed_network():
    model = SmallCNN(in_shape=[3, 32, 32], num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (3, 64, (5, 5), (0, 0)), (64, 30, (5, 5), (0, 0))]
    assert [(l.in_features, l.out_features) for l in linears] == [(30 * 5 * 5, 128), (128, 10)]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_small_cnn_pads_small_images_so_digits_fit():
    model = instantiate(compose_config().model)  # digits: 1x8x8
    assert model.features[0].padding == (2, 2)
    assert model(torch.zeros(4, 1, 8, 8)).shape == (4, 10)


def test_small_cnn_refuses_tabular_data_naming_model_mlp():
    with pytest.raises(UserError, match="use model=mlp"):
        build(compose_config(["data=iris"]).model, "model")


def test_mlp_without_hidden_layers_is_a_single_linear_perceptron():
    model = instantiate(compose_config(["model=mlp", "data=iris", "model.hidden=[]"]).model)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4, 3)]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_mlp_uses_the_chosen_activation(name):
    model = instantiate(compose_config(["model=mlp", f"model.activation={name}", "model.hidden=[16,8]"]).model)
    assert sum(isinstance(m, ACTIVATIONS[name]) for m in model.modules()) == 2
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_unknown_activation_names_the_key_and_the_choices():
    with pytest.raises(UserError, match=r"model.activation=gelu .* relu, sigmoid, tanh, leaky_relu, prelu"):
        MLP(in_shape=[4], num_classes=3, hidden=[8], activation="gelu")
