"""nnc: neural-network layers with hand-written C (SIMD + OpenMP) kernels.

Every layer of :mod:`nnc.layers` is re-exported here as ``nnc.<Name>``;
the user guide and the API reference are in the documentation (``docs/``,
built with ``make -C docs html``).
"""
from ._config import (clear_memory_cache, get_num_threads, seed, set_memory_cache_limit, set_num_threads,
                      set_stall_threshold, show_config, threads)
from .clip import clip_grad_norm, clip_grad_value
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from . import callbacks, losses, optim
from .callbacks import (Callback, CosineDecay, CSVLogger, EarlyStopping, ExponentialDecay, LearningRateScheduler,
                        ModelCheckpoint, ReduceLROnPlateau, StepDecay, WarmUp)
from .models import Sequential
from .graph import Graph
from .interop import from_torch
from .serialization import load
from ._version import __version__

__all__ = ["clear_memory_cache", "set_memory_cache_limit", "get_num_threads", "set_num_threads", "set_stall_threshold", "seed", "show_config", "threads", "clip_grad_value",
           "clip_grad_norm", "losses", "optim", "Sequential", "Graph", "from_torch", "load", "callbacks", "Callback", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger", "StepDecay",
           "ExponentialDecay", "CosineDecay", "WarmUp", *_layers_all]
