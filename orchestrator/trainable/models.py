"""Models built from `ModelConfig`: an MLP, a small CNN and a small ResNet."""

from __future__ import annotations

import math

from torch import nn

from orchestrator.errors import OrchestratorError
from orchestrator.spec.settings import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU,
               "sigmoid": nn.Sigmoid}


def _norm1d(kind: str, width: int) -> list[nn.Module]:
    return {"none": [], "batch": [nn.BatchNorm1d(width)], "layer": [nn.LayerNorm(width)]}[kind]


def _norm2d(kind: str, channels: int) -> list[nn.Module]:
    # layer norm over (C, H, W) of a conv map is GroupNorm with one group
    return {
        "none": [],
        "batch": [nn.BatchNorm2d(channels)],
        "layer": [nn.GroupNorm(1, channels)],
    }[kind]


def mlp(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """`depth` hidden layers of `hidden` units: linear, norm, activation, dropout."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.hidden), *_norm1d(cfg.norm, cfg.hidden)]
        layers += [ACTIVATIONS[cfg.activation]()]
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        width = cfg.hidden
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)


def _image_channels(cfg: ModelConfig, input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3:
        raise OrchestratorError(
            f"model.name: {cfg.name!r} needs image data (channels, height, width), "
            f"but the data set's examples have shape {input_shape}"
        )
    return input_shape[0]


def _pooled_head(cfg: ModelConfig, channels: int, num_outputs: int) -> list[nn.Module]:
    """Global average pooling, optional dropout, then the outputs (class logits, or the
    regression targets)."""
    dropout = [nn.Dropout(cfg.dropout)] if cfg.dropout else []
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), *dropout, nn.Linear(channels, num_outputs)]


def cnn(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """`depth` conv blocks, channels doubling per block, pooling while the map is > 4px."""
    c_in, size = _image_channels(cfg, input_shape), input_shape[1]
    layers: list[nn.Module] = []
    for i in range(cfg.depth):
        c_out = cfg.channels * 2**i
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), *_norm2d(cfg.norm, c_out)]
        layers += [ACTIVATIONS[cfg.activation]()]
        if size > 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c_in = c_out
    return nn.Sequential(*layers, *_pooled_head(cfg, c_in, num_outputs))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, cfg: ModelConfig):
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        norm, bias = cfg.norm, cfg.norm == "none"  # a conv followed by a norm needs no bias
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=bias), *_norm2d(norm, c_out), act(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=bias), *_norm2d(norm, c_out),
        )
        self.skip = (
            nn.Identity() if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=bias),
                               *_norm2d(norm, c_out))
        )
        self.act = act()

    def forward(self, x):
        return self.act(self.body(x) + self.skip(x))


def resnet(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """A stem conv, then `depth` basic blocks; every second block halves the map
    and doubles the channels. `norm` is honoured everywhere, the stem included (`none`:
    no normalisation at all, the convolutions then carry biases)."""
    c_in = _image_channels(cfg, input_shape)
    c = cfg.channels
    layers: list[nn.Module] = [nn.Conv2d(c_in, c, 3, 1, 1, bias=cfg.norm == "none"),
                               *_norm2d(cfg.norm, c), ACTIVATIONS[cfg.activation]()]
    for i in range(cfg.depth):
        downsample = i > 0 and i % 2 == 0
        c_out = c * 2 if downsample else c
        layers.append(_BasicBlock(c, c_out, 2 if downsample else 1, cfg))
        c = c_out
    return nn.Sequential(*layers, *_pooled_head(cfg, c, num_outputs))


MODELS = {"mlp": mlp, "cnn": cnn, "resnet": resnet}


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    return MODELS[cfg.name](cfg, input_shape, num_outputs)
