"""The on-disk training dataset of one voice, and its loader.

Format (written by the preprocess stage, read here)::

    DATASET_DIR/
      manifest.json
      <any layout>/...          files named by the manifest, paths relative to DATASET_DIR

``manifest.json``::

    {
      "format": "svc-studio/dataset",
      "version": 1,
      "sample_rate": 32000,        # rate of every slice's wav (= the model's audio.sample_rate)
      "f0_rate": 100.0,            # frames per second of f0.npy
      "content_rate": 50.0,        # frames per second of ppg.npy / vec.npy
      "ppg_dim": 1280,             # 0 when no PPG is stored
      "vec_dim": 256,              # 0 when no HuBERT-soft vec is stored
      "spk_dim": 256,
      "speaker": "speaker.npy",    # optional: the singer's centroid embedding [spk_dim]
      "meta": {...},               # free-form provenance (encoders, F0 method, source tracks)
      "slices": [
        {"id": "song1_003", "split": "train",     # "train" | "valid"
         "wav": "slices/song1_003.wav",           # mono, sample_rate Hz, any soundfile format
         "f0": "slices/song1_003.f0.npy",         # float32 [N_f0] Hz, 0 = unvoiced
         "ppg": "slices/song1_003.ppg.npy",       # float16/32 [N_c, ppg_dim]  (if ppg_dim > 0)
         "vec": "slices/song1_003.vec.npy",       # float16/32 [N_c, vec_dim]  (if vec_dim > 0)
         "spk": "slices/song1_003.spk.npy",       # optional float32 [spk_dim]; else "speaker"
         "seconds": 4.2}
      ]
    }

Features may come at their own frame rates; the loader maps them onto the model's frames
(``hop_length`` samples each; frame ``i`` covers ``[i * hop, (i + 1) * hop)``) by taking, for
each frame, the feature frame that contains its start time — the same as so-vits-svc 5.0's
``np.repeat(ppg, 2)`` for 50 frames/s features at 100 frames/s. Feature files that are much
shorter or longer than the audio (more than ``max(2 feature frames, 50 ms)``) are rejected.

Sampling: :class:`ResumableBatchSampler` draws a permutation per epoch from
``(seed, epoch)`` alone and can start at any batch of an epoch, so a resumed run sees exactly
the batches that an uninterrupted one would. Random crops of long slices are seeded by
``(seed, epoch, index)``, independent of worker processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from svc_core.errors import BadInputError, IncompatibleError
from svc_core.model.align import align_to_frames
from svc_core.utils import write_atomic

MANIFEST_NAME = "manifest.json"
DATASET_FORMAT = "svc-studio/dataset"
DATASET_VERSION = 1


@dataclass(frozen=True)
class SliceEntry:
    """One slice: paths relative to the dataset folder."""

    id: str
    split: str
    wav: str
    f0: str
    ppg: str | None = None
    vec: str | None = None
    spk: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class DatasetManifest:
    sample_rate: int
    f0_rate: float
    content_rate: float
    ppg_dim: int
    vec_dim: int
    slices: tuple[SliceEntry, ...]
    spk_dim: int = 256
    speaker: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> tuple[SliceEntry, ...]:
        return tuple(s for s in self.slices if s.split == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": DATASET_FORMAT,
            "version": DATASET_VERSION,
            "sample_rate": self.sample_rate,
            "f0_rate": self.f0_rate,
            "content_rate": self.content_rate,
            "ppg_dim": self.ppg_dim,
            "vec_dim": self.vec_dim,
            "spk_dim": self.spk_dim,
            "speaker": self.speaker,
            "meta": self.meta,
            "slices": [{k: v for k, v in s.__dict__.items() if v is not None} for s in self.slices],
        }


def write_manifest(dataset_dir: Path, manifest: DatasetManifest) -> Path:
    """Write ``manifest.json`` atomically (temp file + rename)."""
    return write_atomic(Path(dataset_dir) / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1))


def load_manifest(dataset_dir: Path) -> DatasetManifest:
    """Read and validate ``manifest.json``; raises BadInputError / IncompatibleError."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BadInputError(f"no {MANIFEST_NAME} in {dataset_dir}: run preprocess first")
    try:
        d = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path} is not readable JSON: {exc}") from exc
    if d.get("format") != DATASET_FORMAT:
        raise IncompatibleError(f"{path} is not an svc-studio dataset manifest")
    if d.get("version") != DATASET_VERSION:
        raise IncompatibleError(
            f"{path} has dataset format version {d.get('version')}; this version of "
            f"svc-studio reads version {DATASET_VERSION}: run preprocess again"
        )
    try:
        slices = tuple(SliceEntry(**s) for s in d["slices"])
        m = DatasetManifest(
            sample_rate=int(d["sample_rate"]),
            f0_rate=float(d["f0_rate"]),
            content_rate=float(d["content_rate"]),
            ppg_dim=int(d.get("ppg_dim", 0)),
            vec_dim=int(d.get("vec_dim", 0)),
            spk_dim=int(d.get("spk_dim", 256)),
            speaker=d.get("speaker"),
            meta=dict(d.get("meta") or {}),
            slices=slices,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"{path} is malformed: {exc}") from exc
    if m.ppg_dim <= 0 and m.vec_dim <= 0:
        raise BadInputError(f"{path}: the dataset has neither PPG nor vec content features")
    for s in slices:
        if s.split not in ("train", "valid"):
            raise BadInputError(f"{path}: slice {s.id} has split '{s.split}' (train|valid)")
        if (m.ppg_dim > 0 and not s.ppg) or (m.vec_dim > 0 and not s.vec):
            raise BadInputError(f"{path}: slice {s.id} lacks a content feature file")
        if not s.spk and not m.speaker:
            raise BadInputError(f"{path}: slice {s.id} has no speaker embedding")
    return m


class SliceDataset(torch.utils.data.Dataset):
    """Items of one split, aligned to model frames.

    Indexed by ``(slice_index, crop_seed)`` pairs (see :class:`ResumableBatchSampler`).
    Each item is a dict: ``wav [L]``, ``f0 [T]``, ``ppg [T, Dp]``/``vec [T, Dv]`` (or None),
    ``spk [S]``, with ``L = T * hop_length`` and ``T <= max_frames``.
    """

    def __init__(
        self,
        dataset_dir: Path,
        manifest: DatasetManifest,
        split: str,
        *,
        sample_rate: int,
        hop_length: int,
        min_frames: int,
        max_frames: int,
    ):
        if manifest.sample_rate != sample_rate:
            raise BadInputError(
                f"the dataset's audio is {manifest.sample_rate} Hz but the model runs at "
                f"{sample_rate} Hz: preprocess the voice for this model config"
            )
        self.dir = Path(dataset_dir)
        self.m = manifest
        self.hop = hop_length
        self.sr = sample_rate
        self.max_frames = max_frames
        self.min_frames = min_frames
        self._centroid: np.ndarray | None = None
        entries = manifest.split(split)
        # slices shorter than one training segment cannot be cropped to it (5.0 drops them too)
        self.entries = tuple(s for s in entries if self._frames(s) >= min_frames)
        self.skipped_short = len(entries) - len(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def _frames(self, s: SliceEntry) -> int:
        import soundfile as sf

        try:
            info = sf.info(str(self._path(s.wav)))
        except (OSError, RuntimeError) as exc:
            raise BadInputError(f"slice {s.id}: cannot read {s.wav}: {exc}") from exc
        return info.frames // self.hop

    def _path(self, rel: str) -> Path:
        return self.dir / rel

    def _spk(self, s: SliceEntry) -> np.ndarray:
        if s.spk:
            v = np.load(self._path(s.spk))
        else:
            if self._centroid is None:
                self._centroid = np.load(self._path(self.m.speaker))
            v = self._centroid
        v = np.asarray(v, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.m.spk_dim:
            raise BadInputError(f"slice {s.id}: speaker embedding has {v.shape[0]} dims")
        return v

    def load(
        self, index: int, crop_seed: int | None = None, max_frames: int | None = None
    ) -> dict[str, Any]:
        """Slice ``index``, cropped to ``max_frames`` (the dataset's by default) at a place
        drawn from ``crop_seed``."""
        import soundfile as sf

        s = self.entries[index]
        try:
            wav, sr = sf.read(str(self._path(s.wav)), dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as exc:
            raise BadInputError(f"slice {s.id}: cannot read {s.wav}: {exc}") from exc
        if sr != self.sr:
            raise BadInputError(f"slice {s.id}: {s.wav} is {sr} Hz, expected {self.sr} Hz")
        wav = wav.mean(axis=1)
        if not np.all(np.isfinite(wav)):
            raise BadInputError(f"slice {s.id}: audio has NaN/inf samples")
        n = len(wav) // self.hop
        seconds = len(wav) / self.sr

        def feature(rel: str, rate: float, name: str) -> np.ndarray:
            x = np.load(self._path(rel))
            dur = x.shape[0] / rate
            if abs(dur - seconds) > max(2.0 / rate, 0.05):
                raise BadInputError(
                    f"slice {s.id}: {name} covers {dur:.2f} s but the audio {seconds:.2f} s"
                )
            if x.shape[0] < 1:
                raise BadInputError(f"slice {s.id}: {name} file is empty")
            return align_to_frames(x, rate, n, self.hop, self.sr)

        f0 = feature(s.f0, self.m.f0_rate, "f0").astype(np.float32).reshape(n)
        ppg = vec = None
        if self.m.ppg_dim:
            ppg = feature(s.ppg, self.m.content_rate, "ppg").astype(np.float32)
        if self.m.vec_dim:
            vec = feature(s.vec, self.m.content_rate, "vec").astype(np.float32)
        start = 0
        limit = self.max_frames if max_frames is None else max_frames
        if n > limit:
            rng = np.random.default_rng(crop_seed)
            start = int(rng.integers(0, n - limit + 1))
            n = limit
        sl = slice(start, start + n)
        return {
            "id": s.id,
            "wav": torch.from_numpy(
                np.ascontiguousarray(wav[start * self.hop : (start + n) * self.hop])
            ),
            "f0": torch.from_numpy(np.ascontiguousarray(f0[sl])),
            "ppg": None if ppg is None else torch.from_numpy(np.ascontiguousarray(ppg[sl])),
            "vec": None if vec is None else torch.from_numpy(np.ascontiguousarray(vec[sl])),
            "spk": torch.from_numpy(self._spk(s)),
        }

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any]:
        if isinstance(key, tuple):
            return self.load(*key)
        return self.load(key)


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Zero-pad a list of items into a batch: ``wav [B, 1, L]``, ``f0 [B, T]``,
    ``ppg [B, T, Dp]``, ``vec [B, T, Dv]``, ``spk [B, S]``, ``lengths [B]`` (frames)."""
    b = len(items)
    t = max(int(it["f0"].shape[0]) for it in items)
    # every item holds exactly frames * hop samples (see SliceDataset.load)
    hop = items[0]["wav"].shape[0] // items[0]["f0"].shape[0]
    out: dict[str, Any] = {
        "ids": [it["id"] for it in items],
        "lengths": torch.tensor([it["f0"].shape[0] for it in items], dtype=torch.long),
        "wav": torch.zeros(b, 1, t * hop),
        "f0": torch.zeros(b, t),
        "spk": torch.stack([it["spk"] for it in items]),
        "ppg": None,
        "vec": None,
    }
    for key in ("ppg", "vec"):
        if items[0][key] is not None:
            out[key] = torch.zeros(b, t, items[0][key].shape[1])
    for i, it in enumerate(items):
        n = it["f0"].shape[0]
        out["wav"][i, 0, : n * hop] = it["wav"][: n * hop]
        out["f0"][i, :n] = it["f0"]
        for key in ("ppg", "vec"):
            if it[key] is not None:
                out[key][i, :n] = it[key]
    return out


class ResumableBatchSampler(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """Shuffled batches of ``(index, crop_seed)`` for one epoch, from any starting batch.

    Args:
        n_items: dataset size.
        batch_size: items per batch (the last batch may be smaller).
        seed: run seed.
        epoch: epoch number; with the seed, it alone decides the order.
        start_batch: the first batch to yield (batches already consumed in this epoch).
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, epoch: int, start_batch: int = 0):
        self.n = n_items
        self.bs = batch_size
        self.seed = seed
        self.epoch = epoch
        self.start = start_batch

    def batches(self) -> list[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        out = []
        for i in range(0, self.n, self.bs):
            base = (self.seed * 1_000_003 + self.epoch) * 1_000_033
            out.append([(j, base + j) for j in order[i : i + self.bs]])
        return out

    def __len__(self) -> int:
        return max(self.num_batches() - self.start, 0)

    def num_batches(self) -> int:
        return (self.n + self.bs - 1) // self.bs

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        yield from self.batches()[self.start :]
