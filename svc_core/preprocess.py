"""Preprocess: slices of a singer → the training dataset of a voice.

For every slice: mono, loudness-normalised, resampled to the model rate (WAV); F0 on the
model's frame grid; content features (Whisper PPG and/or HuBERT-soft vec); a GE2E speaker
embedding. The singer's centroid embedding is saved as ``speaker.npy`` (the voice's
``.spk.npy``). Everything goes into ``dataset_dir`` in the format of
:mod:`svc_core.train.dataset`.

Features are cached per slice under a key made of the slice file's sha256 and every
parameter that changes them, so re-running with the same parameters (a resumed job, one
more uploaded song) computes only what is new. Each encoder is loaded once per process.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from svc_core.audio.dsp import loudness_lufs, normalize_loudness, resample, to_mono
from svc_core.audio.io import load_audio, save_wav
from svc_core.content.extract import ContentExtractor, ContentParams
from svc_core.errors import BadAudioError, BadInputError
from svc_core.f0.base import F0Params, extract_f0
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.recipes import DEFAULT_TARGET_LUFS
from svc_core.speaker import (
    SpeakerParams,
    centroid,
    save_spk,
    singer_vector,
    speaker_embedding,
)
from svc_core.train.dataset import DatasetManifest, SliceEntry, write_manifest
from svc_core.utils import atomic_write, file_sha256, write_atomic

FEATURE_VERSION = 1  # bump when the way features are computed changes
CONTENT_RATE = 50.0  # frames/s of both content encoders (16 kHz, 320-sample hop)


@dataclass(frozen=True)
class PreprocessParams:
    """How slices become training items. ``sample_rate``/``hop_length`` come from the model."""

    sample_rate: int = 32000
    hop_length: int = 320
    f0: F0Params = field(default_factory=F0Params)
    content: ContentParams = field(default_factory=ContentParams)
    speaker: SpeakerParams = field(default_factory=SpeakerParams)
    target_lufs: float | None = DEFAULT_TARGET_LUFS  # None: keep the slices' own level
    valid_fraction: float = 0.05
    max_valid: int = 8
    min_slice_s: float = 0.5  # shorter slices carry too little to learn from

    def __post_init__(self) -> None:
        if self.hop_length <= 0 or self.sample_rate <= 0:
            raise BadInputError("sample_rate and hop_length must be positive")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise BadInputError("valid_fraction must lie in [0, 1)")

    @property
    def f0_params(self) -> F0Params:
        """F0 on the model's frame grid (hop_length / sample_rate seconds)."""
        return replace(self.f0, hop_s=self.hop_length / self.sample_rate)

    def feature_key(self) -> dict:
        """Everything that changes a slice's features (the device does not)."""
        content = {k: v for k, v in asdict(self.content).items() if k not in ("device",)}
        for name in ("ppg_checkpoint", "vec_checkpoint"):
            content[name] = _file_identity(content.get(name))
        speaker = {k: v for k, v in asdict(self.speaker).items() if k != "device"}
        speaker["encoder_model"] = _file_identity(speaker.get("encoder_model"))
        f0 = {k: v for k, v in asdict(self.f0_params).items() if k not in ("device",)}
        return {
            "v": FEATURE_VERSION,
            "sr": self.sample_rate,
            "hop": self.hop_length,
            "lufs": self.target_lufs,
            "f0": f0,
            "content": content,
            "speaker": speaker,
        }


def _file_identity(path: str | None) -> str | None:
    """A model file's identity (name, size, mtime), not where it lies."""
    if not path:
        return None
    st = Path(path).stat()
    return f"{Path(path).name}:{st.st_size}:{int(st.st_mtime)}"


def params_for(
    config: str,
    *,
    f0_method: str,
    ppg_checkpoint: str | None,
    vec_checkpoint: str | None,
    device: str = "cpu",
    f0_weights: str | None = None,
    speaker_encoder: str = "ge2e",
    speaker_model: str | None = None,
) -> PreprocessParams:
    """Preprocessing settings for a model config (its sample rate and hop) and the chosen
    F0 method and content checkpoints — one place for the worker, the CLI and the pipeline."""
    from svc_core.model.config import load_config

    cfg = load_config(config)
    return PreprocessParams(
        sample_rate=cfg.audio.sample_rate,
        hop_length=cfg.audio.hop_length,
        f0=F0Params(method=f0_method, device=device, weights_path=f0_weights),
        content=ContentParams(
            ppg_checkpoint=ppg_checkpoint, vec_checkpoint=vec_checkpoint, device=device
        ),
        speaker=SpeakerParams(device=device, encoder=speaker_encoder, encoder_model=speaker_model),
    )


@dataclass(frozen=True)
class SliceFeatures:
    id: str
    seconds: float
    voiced_seconds: float
    f0_path: Path
    reused: bool


@dataclass
class PreprocessResult:
    dataset_dir: Path
    manifest: DatasetManifest
    speaker_path: Path  # the voice's speaker vector (what the model is conditioned on)
    judge_path: Path  # its GE2E centroid (what the quality report compares with)
    slices: list[SliceFeatures]
    skipped: list[str]  # "<slice>: <reason>"

    @property
    def reused(self) -> int:
        return sum(s.reused for s in self.slices)


def _split(ids: Sequence[str], params: PreprocessParams) -> set[str]:
    """A deterministic validation set: the ids with the smallest hashes (stable when slices
    are added: an existing slice never moves from train to valid)."""
    if len(ids) < 4 or params.valid_fraction <= 0:
        return set()
    n = min(params.max_valid, max(1, round(len(ids) * params.valid_fraction)))
    return set(sorted(ids, key=lambda i: hashlib.sha1(i.encode()).hexdigest())[:n])


def build_dataset(
    slices: Sequence[str | os.PathLike],
    dataset_dir: str | os.PathLike,
    params: PreprocessParams,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    meta: dict | None = None,
) -> PreprocessResult:
    """Compute (or reuse) every slice's features and write ``manifest.json`` + ``speaker.npy``.

    Args:
        slices: slice audio files (any readable format/rate/channels).
        dataset_dir: output folder; a cache of earlier runs may already be there.
        params: see :class:`PreprocessParams`.
        progress: ``progress("preprocess", fraction)`` per slice.
        should_stop: cancellation hook (checked between slices; finished slices stay cached).
        meta: free-form provenance stored in the manifest.

    Raises:
        BadInputError: no usable slice (all silent / too short / unvoiced).
    """
    out = Path(dataset_dir)
    feats = out / "feats"
    feats.mkdir(parents=True, exist_ok=True)
    report = progress or (lambda _s, _f: None)
    fkey = params.feature_key()
    fkey_hash = hashlib.sha256(json.dumps(fkey, sort_keys=True).encode()).hexdigest()[:16]
    extractor: ContentExtractor | None = None
    done: list[tuple[SliceFeatures, SliceEntry]] = []
    skipped: list[str] = []
    spks: list[np.ndarray] = []
    judges: list[np.ndarray] = []
    for i, src in enumerate(slices):
        check_stop(should_stop)
        src = Path(src)
        sid = hashlib.sha256(f"{file_sha256(src)}:{fkey_hash}".encode()).hexdigest()[:20]
        base = feats / sid
        files = {
            "wav": base.with_suffix(".wav"),
            "f0": base.with_suffix(".f0.npy"),
            "spk": base.with_suffix(".spk.npy"),
            "info": base.with_suffix(".json"),
        }
        if params.speaker.encoder != "ge2e":
            files["judge"] = base.with_suffix(".ge2e.npy")
        if params.content.ppg_checkpoint:
            files["ppg"] = base.with_suffix(".ppg.npy")
        if params.content.vec_checkpoint:
            files["vec"] = base.with_suffix(".vec.npy")
        reused = _complete(files)
        if not reused:
            try:
                if extractor is None:
                    extractor = ContentExtractor(params.content)
                _compute(src, files, params, extractor)
            except BadAudioError as exc:
                skipped.append(f"{src.name}: {exc}")
                report("preprocess", (i + 1) / len(slices))
                continue
        info = json.loads(files["info"].read_text("utf-8"))
        if info.get("skip"):
            skipped.append(f"{src.name}: {info['skip']}")
            report("preprocess", (i + 1) / len(slices))
            continue
        spks.append(np.load(files["spk"]))
        judges.append(np.load(files.get("judge", files["spk"])))
        sf = SliceFeatures(
            id=sid,
            seconds=info["seconds"],
            voiced_seconds=info["voiced_seconds"],
            f0_path=files["f0"],
            reused=reused,
        )
        rel = {k: str(p.relative_to(out)) for k, p in files.items()}
        entry = SliceEntry(
            id=sid,
            split="train",
            wav=rel["wav"],
            f0=rel["f0"],
            ppg=rel.get("ppg"),
            vec=rel.get("vec"),
            spk=rel["spk"],
            seconds=info["seconds"],
        )
        done.append((sf, entry))
        report("preprocess", (i + 1) / len(slices))
    if not done:
        detail = f" ({'; '.join(skipped[:3])})" if skipped else ""
        raise BadInputError(f"None of the {len(slices)} slice(s) is usable for training{detail}.")
    valid = _split([e.id for _, e in done], params)
    entries = tuple(
        SliceEntry(**{**e.__dict__, "split": "valid" if e.id in valid else "train"})
        for _, e in done
    )
    judge_path = save_spk(out / "judge.npy", centroid(np.stack(judges)))
    speaker_path = save_spk(out / "speaker.npy", singer_vector(np.stack(spks), params.speaker))
    dims = _dims(out, entries)
    manifest = DatasetManifest(
        sample_rate=params.sample_rate,
        f0_rate=params.sample_rate / params.hop_length,
        content_rate=CONTENT_RATE,
        ppg_dim=dims.get("ppg", 0),
        vec_dim=dims.get("vec", 0),
        slices=entries,
        speaker="speaker.npy",
        meta={"features": fkey, **(meta or {})},
    )
    write_manifest(out, manifest)
    return PreprocessResult(
        dataset_dir=out,
        manifest=manifest,
        speaker_path=speaker_path,
        judge_path=judge_path,
        slices=[s for s, _ in done],
        skipped=skipped,
    )


def _dims(out: Path, entries: Sequence[SliceEntry]) -> dict[str, int]:
    first = entries[0]
    dims = {}
    for key in ("ppg", "vec"):
        rel = getattr(first, key)
        if rel:
            dims[key] = int(np.load(out / rel, mmap_mode="r").shape[1])
    return dims


def _compute(
    src: Path, files: dict[str, Path], params: PreprocessParams, extractor: ContentExtractor
) -> None:
    audio, sr = load_audio(src)
    mono = to_mono(audio)
    seconds = len(mono) / sr
    if seconds < params.min_slice_s:
        _write_info(files, seconds=seconds, voiced=0.0, skip=f"shorter than {params.min_slice_s} s")
        return
    if params.target_lufs is not None and loudness_lufs(mono, sr) > -70.0:
        mono = normalize_loudness(mono, sr, params.target_lufs, max_peak_dbfs=-1.0)
    wav = resample(mono, sr, params.sample_rate)
    f0 = extract_f0(wav, params.sample_rate, params.f0_params)
    voiced = float((f0 > 0).sum()) * params.hop_length / params.sample_rate
    if voiced < 0.1:
        _write_info(files, seconds=seconds, voiced=voiced, skip="no pitched singing found")
        return
    spk = speaker_embedding(mono, sr, params.speaker)
    judge = None
    if "judge" in files:  # the quality report's independent GE2E judge
        judge = speaker_embedding(
            mono, sr, replace(params.speaker, encoder="ge2e", encoder_model=None)
        )
    content = extractor.extract(mono, sr)
    # write the info file last: its presence marks the slice's features as complete
    save_wav(files["wav"], wav, params.sample_rate)
    _save_npy(files["f0"], f0.astype(np.float32))
    _save_npy(files["spk"], spk.astype(np.float32))
    if judge is not None:
        _save_npy(files["judge"], judge.astype(np.float32))
    for key in ("ppg", "vec"):
        if key in files:
            _save_npy(files[key], content[key].astype(np.float16))
    _write_info(files, seconds=seconds, voiced=voiced)


def _complete(files: dict[str, Path]) -> bool:
    """The info file is written last: with it, the slice is done (or known to be unusable)."""
    if not files["info"].exists():
        return False
    if json.loads(files["info"].read_text("utf-8")).get("skip"):
        return True
    return all(p.exists() for p in files.values())


def _write_info(files: dict[str, Path], *, seconds: float, voiced: float, skip: str = "") -> None:
    data: dict[str, float | str] = {
        "seconds": round(seconds, 4),
        "voiced_seconds": round(voiced, 4),
    }
    if skip:
        data["skip"] = skip
    write_atomic(files["info"], json.dumps(data))


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_write(path) as f:
        np.save(f, arr)
