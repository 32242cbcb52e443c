"""Tiny pretrained assets in the official file formats, installed into a models folder.

The product's real loaders read them exactly as they read the real weights: an
openai-whisper ``.pt`` (dims + model_state_dict), bshall's HubertSoft ``.pt`` (DDP
``module.`` keys) and an MDX-Net ONNX registered the way audio-separator finds models
(``mdx_model_data.json`` by MD5, ``download_checks.json``). Only the sizes are tiny and the
weights random, so features are meaningless but shapes, rates and code paths are real.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.common.tiny_models import (
    HUBERT_TINY,
    hubert_state,
    install_tiny_mdx,
    whisper_dims,
    whisper_state,
)

PPG_ASSET = "whisper-tiny"
VEC_ASSET = "hubert-soft"
SEPARATION_ASSET = "mdx-voc-ft"  # the default separation model's name


def install_tiny_assets(models_dir: Path) -> dict[str, str]:
    """Write tiny whisper, HuBERT-soft and separation models under their registry file names.

    Returns the asset names to use (``ppg_model``, ``vec_model``, ``separation_model``).
    """
    from svc_core.assets import get_asset

    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    dims = whisper_dims(state=16)
    torch.save(
        {"dims": dims, "model_state_dict": whisper_state(dims)},
        models_dir / get_asset(PPG_ASSET).filename,
    )
    torch.save(
        hubert_state(**{**HUBERT_TINY, "out": 16}), models_dir / get_asset(VEC_ASSET).filename
    )
    install_tiny_mdx(models_dir, get_asset(SEPARATION_ASSET).filename)
    return {"ppg_model": PPG_ASSET, "vec_model": VEC_ASSET, "separation_model": SEPARATION_ASSET}
