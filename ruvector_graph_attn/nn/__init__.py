"""numpy modules with forward/backward and torch-style state_dict names."""
from .module import Module, Parameter

__all__ = ["Module", "Parameter"]
