"""A plain MLP: the model factory of this example."""

from torch import nn


def build(input_shape, num_outputs, width: int = 32, depth: int = 1, dropout: float = 0.0):
    layers, size = [], input_shape[0]
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.ReLU(), nn.Dropout(dropout)]
        size = width
    layers.append(nn.Linear(size, num_outputs))  # num_outputs is 1: one target per row
    return nn.Sequential(*layers)
