"""Training methods: given a batch and a model, compute the loss (and what a step needs).

A method knows nothing of optimisers, schedules, checkpoints or logging: the engine owns those.
"""

from pcseg.methods.base import Method, StepContext, StepResult, build_method, register_method

__all__ = ["Method", "StepContext", "StepResult", "build_method", "register_method"]
