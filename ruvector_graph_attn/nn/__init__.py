"""numpy modules with forward/backward and torch-style state_dict names."""
from .layers import (
    ELU, Dropout, Identity, LayerNorm, LeakyReLU, Linear, ReLU, Sequential, Tanh,
    kaiming_uniform, seed,
)
from .module import Module, Parameter

__all__ = [
    "Module", "Parameter", "Linear", "Sequential", "ReLU", "LeakyReLU", "ELU", "Tanh",
    "Identity", "Dropout", "LayerNorm", "seed", "kaiming_uniform",
]
