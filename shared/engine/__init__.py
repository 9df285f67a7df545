"""Training engine: one loop (:class:`Trainer`) for every app, driven by a :class:`TrainTask`."""
from .trainer import TrainConfig, Trainer, TrainTask, resolve_device

__all__ = ["TrainConfig", "Trainer", "TrainTask", "resolve_device"]
