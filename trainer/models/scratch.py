"""Models built from scratch: the seeds' small CIFAR CNN and an MLP (a perceptron when it has no hidden layer).
Every model takes `in_shape` (one sample's shape) and `num_classes` from the data config and returns logits."""
from collections.abc import Sequence

import torch
from torch import nn

from trainer.errors import UserError

# The activations the seeds discuss. PReLU learns its negative slope, so it is a module with a parameter.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(f"model.activation={name} is not known: use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class SmallCNN(nn.Module):
    """The seeds' CIFAR-10 network: conv(k5) -> ReLU -> pool, twice, then fc -> 128 -> classes.

    On 3x32x32 images with padding=0 it is exactly the seeds' Conv2d(3,64,5), Conv2d(64,30,5), Linear(30*5*5,128).
    `padding: auto` keeps those valid convolutions when the image is large enough for them (>= 16 px) and pads
    by kernel_size // 2 otherwise, so 8x8 digits survive two poolings.
    """

    def __init__(self, *, in_shape: Sequence[int], num_classes: int, channels: Sequence[int] = (64, 30),
                 kernel_size: int = 5, hidden: int = 128, padding: int | str = "auto", dropout: float = 0.0):
        super().__init__()
        if len(in_shape) != 3:
            raise UserError(
                f"model=small_cnn needs images shaped [channels, height, width], but data.shape={list(in_shape)}: "
                "use model=mlp for tabular data"
            )
        in_channels, height, width = in_shape
        if padding == "auto":
            padding = 0 if min(height, width) >= 16 else kernel_size // 2
        layers, size = [], (height, width)
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding), nn.ReLU(), nn.MaxPool2d(2)]
            size = tuple((s + 2 * padding - kernel_size + 1) // 2 for s in size)
            in_channels = out_channels
        if min(size) < 1:
            raise UserError(f"data.shape={list(in_shape)} is too small for model=small_cnn: set model.padding=2")
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * size[0] * size[1], hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Flatten -> [Linear -> activation -> dropout] per hidden size -> Linear to classes.
    No hidden size: a perceptron."""

    def __init__(self, *, in_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (128,),
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        layers, width = [nn.Flatten()], int(torch.tensor(list(in_shape)).prod())
        for size in hidden:
            layers += [nn.Linear(width, size), make_activation(activation), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
