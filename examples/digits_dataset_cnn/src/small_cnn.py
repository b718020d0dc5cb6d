"""A small CNN: the model factory of this example."""

from torch import nn


def build(input_shape, num_outputs, channels: int = 16, blocks: int = 2, dropout: float = 0.0):
    layers, c_in = [], input_shape[0]
    for i in range(blocks):
        c_out = channels * 2**i
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
               nn.Linear(c_in, num_outputs)]
    return nn.Sequential(*layers)
