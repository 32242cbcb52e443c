"""The so-VITS-svc 5.0 voice model: config, modules, builders and the voice-model file.

Heavy imports (torch) happen when the submodules are imported, not here.
"""

from __future__ import annotations

from svc_core.model.config import (
    AudioConfig,
    ModelConfig,
    SVCConfig,
    TrainConfig,
    config_hash,
    load_config,
)

__all__ = [
    "AudioConfig",
    "ModelConfig",
    "SVCConfig",
    "TrainConfig",
    "config_hash",
    "load_config",
]
