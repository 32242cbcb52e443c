"""The trainer on a CUDA GPU: mixed precision (bf16, fp16) trains, validates and resumes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from svc_core.model.config import load_config
from svc_core.train.trainer import TrainParams, train
from tests.common.train_data import load_checkpoint, make_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds"), n_train=5, n_valid=1)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cuda(dataset, tmp_path, precision):
    tiny = load_config("tiny")
    cfg = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, precision=precision))
    a = train(dataset, tmp_path / "a", cfg, TrainParams(max_steps=4, device="cuda"))
    assert a.step == 4 and np.isfinite(a.losses["mel"]) and np.isfinite(a.last_val_mel)
    b = train(dataset, tmp_path / "a", cfg, TrainParams(max_steps=6, device="cuda"))
    assert b.resumed_from_step == 4
    c = load_checkpoint(b.checkpoint)
    assert "scale" in c["scaler_g"] or precision == "bf16"
