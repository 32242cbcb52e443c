"""Vocal separation: a mixture in, 44.1 kHz stereo float WAV stems out.

``separate`` runs a main model (mixture -> vocals + instrumental) and optionally a second pass
over the vocals (de-reverb, or lead/backing split). ``input_kind="vocals"`` skips the main pass
for uploads that are vocals already; :func:`use_stems` passes an uploaded vocals + instrumental
pair through (resampled, stereo, equal length). Every call works in its own temporary folder
inside ``out_dir`` and writes its outputs atomically, so concurrent jobs never collide.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from svc_core.audio.dsp import resample, to_channels
from svc_core.audio.io import load_audio, save_wav
from svc_core.errors import AssetMissingError, BadAudioError, BadInputError, SvcError
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.separation.backend import BackendOptions, get_backend
from svc_core.separation.models import (
    CATALOGUE,
    DEFAULT_MODEL,
    KEEP_CANDIDATES,
    Role,
    catalogue_entry,
)

SAMPLE_RATE = 44100
CHANNELS = 2
# Stems may differ from the input by this many frames before we call it a failure (they are
# padded/trimmed to the input length below it; audio-separator's MDX path is exact).
_LENGTH_TOLERANCE = 4096
# A pair of uploaded stems may differ in length by this much (export tails, encoder padding).
STEM_LENGTH_TOLERANCE_S = 1.0
_SILENT_PEAK = 1e-6


@dataclass(frozen=True)
class SeparationParams:
    """What to separate with.

    Attributes:
        model: main model: a registry name (``mdx-voc-ft``, ``bs-roformer-1297``, ...) or the
            file name of another audio-separator model placed in ``models_dir``.
        second_pass: optional model run over the vocals (``vr-deecho-dereverb`` removes reverb,
            ``mdx-karaoke-2`` removes backing vocals); its residual is kept as an extra stem.
        input_kind: ``mixture`` (a song) or ``vocals`` (already a vocal track: the main pass is
            skipped, the vocals are the input; the second pass still runs if set).
        segment_size, overlap, batch_size: MDX-Net inference settings (see BackendOptions).
        max_duration_s: refuse longer inputs.
        backend: separator backend name.
    """

    model: str = DEFAULT_MODEL
    second_pass: str | None = None
    input_kind: Literal["mixture", "vocals"] = "mixture"
    segment_size: int = 256
    overlap: float = 0.25
    batch_size: int = 1
    max_duration_s: float | None = None
    backend: str = "audio-separator"

    def options(self) -> BackendOptions:
        return BackendOptions(self.segment_size, self.overlap, self.batch_size)


@dataclass(frozen=True)
class SeparationResult:
    """Stems written by :func:`separate` / :func:`use_stems` (44.1 kHz, stereo, float32 WAV).

    Attributes:
        vocals: the vocals (after the second pass, if one ran).
        instrumental: the accompaniment; None for vocals-only input.
        extra: further stems by name: ``reverb`` / ``backing_vocals`` (the second pass's
            residual) and ``vocals_before_second_pass``.
        frames: length of every stem in samples (equal to the input's length at 44.1 kHz).
        model, second_pass: the models that ran (None where skipped).
    """

    vocals: Path
    instrumental: Path | None
    extra: Mapping[str, Path] = field(default_factory=dict)
    sample_rate: int = SAMPLE_RATE
    frames: int = 0
    model: str | None = None
    second_pass: str | None = None

    def to_dict(self) -> dict:
        return {
            "vocals": str(self.vocals),
            "instrumental": str(self.instrumental) if self.instrumental else None,
            "extra": {k: str(v) for k, v in self.extra.items()},
            "sample_rate": self.sample_rate,
            "frames": self.frames,
            "model": self.model,
            "second_pass": self.second_pass,
        }


@dataclass(frozen=True)
class _Spec:
    name: str  # what the user asked for
    filename: str  # file in models_dir
    keep: tuple[str, ...]  # stem names meaning "vocals", in preference order
    other: str  # our name for the rest


def _resolve(name: str, models_dir: Path, role: Role) -> _Spec:
    """Map a model name to its file and stem mapping; raise AssetMissingError if unusable."""
    from svc_core.assets import REGISTRY, AssetKind, missing_message

    entry = catalogue_entry(name)
    if entry is not None and entry.role != role:
        wanted = "a second pass" if role == Role.SECOND_PASS else "the main separation"
        raise BadInputError(
            f"'{name}' cannot be used as {wanted}; choose one of: "
            f"{', '.join(n for n, m in CATALOGUE.items() if m.role == role)}"
        )
    asset = REGISTRY.get(entry.name if entry else name)
    if asset is None:
        by_file = [a for a in REGISTRY.values() if a.filename == name]
        asset = by_file[0] if by_file else None
    if asset is not None and asset.kind != AssetKind.SEPARATION:
        raise BadInputError(f"'{name}' is a {asset.kind} asset, not a separation model")
    if asset is not None:
        for needed in (asset.name, *asset.requires):
            filename = REGISTRY[needed].filename
            if not (models_dir / filename).is_file():
                raise AssetMissingError(missing_message(needed, models_dir))
        filename = asset.filename
    else:
        if "/" in name or "\\" in name or not (models_dir / name).is_file():
            known = ", ".join(CATALOGUE)
            raise AssetMissingError(
                f"separation model '{name}' is neither a registered model ({known}) nor a "
                f"file in {models_dir}; run `svc-studio assets pull {DEFAULT_MODEL}` for the "
                f"default model"
            )
        filename = name
    if entry is not None:
        return _Spec(name, filename, (entry.keep,), entry.other)
    if role == Role.MAIN:
        return _Spec(name, filename, ("vocals",), "instrumental")
    return _Spec(name, filename, KEEP_CANDIDATES, "second_pass_residual")


def _read_stem(path: Path, frames: int) -> np.ndarray:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = data.T
    if sr != SAMPLE_RATE:
        audio = resample(audio, sr, SAMPLE_RATE)
    audio = to_channels(audio, CHANNELS)
    n = audio.shape[1]
    if abs(n - frames) > _LENGTH_TOLERANCE:
        raise SvcError(
            f"the separator returned {n} samples for a {frames}-sample input ({path.name})"
        )
    if not np.isfinite(audio).all():
        raise SvcError(f"the separator returned invalid samples (NaN/inf) in {path.name}")
    if n < frames:
        audio = np.pad(audio, ((0, 0), (0, frames - n)))
    return np.ascontiguousarray(audio[:, :frames])


def _run_pass(
    spec: _Spec,
    audio: np.ndarray,
    models_dir: Path,
    work_dir: Path,
    params: SeparationParams,
    *,
    main: bool,
    on_chunk: Callable[[float | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One model over ``audio`` [2, T]. Returns (kept stem, everything else), each [2, T].
    ``on_chunk(fraction)``: progress within the pass (it may raise Cancelled)."""
    peak = float(np.max(np.abs(audio)))
    if peak < _SILENT_PEAK:
        # Nothing to separate: a silent mixture has silent stems.
        return np.zeros_like(audio), np.zeros_like(audio)
    # Feed at peak 1.0 exactly (see audio_separator_backend: its MDX path scales by the input
    # peak) and undo the gain afterwards, so stems keep the input's level.
    gain = 1.0 / peak
    work_dir.mkdir(parents=True, exist_ok=True)
    fed = work_dir / "input.wav"
    sf.write(str(fed), (audio * gain).T, SAMPLE_RATE, subtype="FLOAT")
    stems = get_backend(params.backend).run(
        spec.filename, models_dir, fed, work_dir / "stems", params.options(), on_chunk
    )
    frames = audio.shape[1]
    keep_name = next((k for k in spec.keep if k in stems), None)
    if keep_name is None:
        raise SvcError(
            f"model '{spec.name}' produced stems {sorted(stems)}, none of which is "
            f"{' or '.join(repr(k) for k in spec.keep)}; choose a "
            f"{'vocal separation' if main else 'second-pass'} model"
        )
    kept = _read_stem(stems[keep_name], frames) / gain
    others = [name for name in stems if name != keep_name]
    if main and "instrumental" in others:
        others = ["instrumental"]
    rest = np.zeros_like(kept)
    for name in others:  # multi-stem models: the accompaniment is the sum of the other stems
        rest += _read_stem(stems[name], frames)
    return kept.astype(np.float32), (rest / gain).astype(np.float32)


def _prepare(src: Path, max_duration_s: float | None) -> np.ndarray:
    # Decoded, resampled and laid out block by block: only the 44.1 kHz stereo result is held.
    audio, _sr = load_audio(
        src, max_duration_s=max_duration_s, sample_rate=SAMPLE_RATE, channels=CHANNELS
    )
    return audio


def separate(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: SeparationParams,
    models_dir: str | os.PathLike,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> SeparationResult:
    """Separate ``src`` into stems written to ``out_dir``.

    Writes ``vocals.wav`` and ``instrumental.wav`` (44.1 kHz, stereo, 32-bit float, as long as
    the input), plus ``<residual>.wav`` and ``vocals_before_second_pass.wav`` when a second pass
    runs. With MDX-Net models ``instrumental = mixture - compensate * vocals`` exactly
    (``compensate`` is the model's factor from ``mdx_model_data.json``, about 1.02).

    Args:
        src: the song (any format load_audio reads); for ``input_kind="vocals"`` the vocals.
        out_dir: where the stems go (created).
        params: models and settings.
        models_dir: folder holding the model files and their sidecars.
        progress: ``progress("separate", fraction)``, per chunk of each pass.
        should_stop: checked between chunks and passes; raises Cancelled.

    Raises:
        AssetMissingError: a model or sidecar file is not installed (names the command).
        BadAudioError: the input is not usable audio.
        SvcError: the model fails to load or run.
    """
    src = Path(src)
    out_dir = Path(out_dir)
    models_dir = Path(models_dir)
    if params.input_kind not in ("mixture", "vocals"):
        raise BadInputError(f"unknown input kind '{params.input_kind}' (mixture or vocals)")
    main_spec = (
        _resolve(params.model, models_dir, Role.MAIN) if params.input_kind == "mixture" else None
    )
    second_spec = (
        _resolve(params.second_pass, models_dir, Role.SECOND_PASS) if params.second_pass else None
    )

    def report(fraction: float) -> None:
        if progress is not None:
            progress("separate", fraction)

    n_passes = int(main_spec is not None) + int(second_spec is not None)
    check_stop(should_stop)
    report(0.0)

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".separate-", dir=out_dir))
    try:
        mixture = _prepare(src, params.max_duration_s)
        if main_spec is not None and float(np.max(np.abs(mixture))) < _SILENT_PEAK:
            raise BadAudioError(f"'{src.name}' is silent: there is nothing to separate")
        frames = mixture.shape[1]
        report(0.05)
        done = 0

        def _step() -> None:
            nonlocal done
            done += 1
            report(0.05 + 0.85 * done / max(n_passes, 1))
            check_stop(should_stop)

        def _chunk(fraction: float | None) -> None:  # within the pass under way
            if fraction is not None:
                report(0.05 + 0.85 * (done + fraction) / max(n_passes, 1))
            check_stop(should_stop)

        stems: dict[str, np.ndarray] = {}
        if main_spec is not None:
            check_stop(should_stop)
            vocals, instrumental = _run_pass(
                main_spec, mixture, models_dir, work / "main", params, main=True, on_chunk=_chunk
            )
            stems["instrumental"] = instrumental
            _step()
        else:
            vocals = mixture
        if second_spec is not None:
            check_stop(should_stop)
            cleaned, residual = _run_pass(
                second_spec,
                vocals,
                models_dir,
                work / "second",
                params,
                main=False,
                on_chunk=_chunk,
            )
            stems["vocals_before_second_pass"] = vocals
            stems[second_spec.other] = residual
            vocals = cleaned
            _step()
        stems["vocals"] = vocals

        paths: dict[str, Path] = {}
        for name, audio in stems.items():
            paths[name] = save_wav(out_dir / f"{name}.wav", audio, SAMPLE_RATE, subtype="FLOAT")
        report(1.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return SeparationResult(
        vocals=paths["vocals"],
        instrumental=paths.get("instrumental"),
        extra={k: v for k, v in paths.items() if k not in ("vocals", "instrumental")},
        frames=frames,
        model=main_spec.name if main_spec else None,
        second_pass=second_spec.name if second_spec else None,
    )


def use_stems(
    vocals: str | os.PathLike,
    instrumental: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    *,
    max_duration_s: float | None = None,
) -> SeparationResult:
    """Pass uploaded stems through: 44.1 kHz stereo float WAVs named like :func:`separate`'s.

    With an instrumental, both stems are brought to the same length (the shorter is padded
    with silence) as long as they differ by at most ``STEM_LENGTH_TOLERANCE_S``.

    Raises:
        BadInputError: the two stems' lengths differ by more than the tolerance.
    """
    out_dir = Path(out_dir)
    voc = _prepare(Path(vocals), max_duration_s)
    inst = _prepare(Path(instrumental), max_duration_s) if instrumental is not None else None
    if inst is not None:
        diff = abs(voc.shape[1] - inst.shape[1]) / SAMPLE_RATE
        if diff > STEM_LENGTH_TOLERANCE_S:
            raise BadInputError(
                f"the vocals ({voc.shape[1] / SAMPLE_RATE:.1f} s) and the instrumental "
                f"({inst.shape[1] / SAMPLE_RATE:.1f} s) differ in length by {diff:.1f} s; "
                f"upload both stems exported from the same song"
            )
        n = max(voc.shape[1], inst.shape[1])
        voc = np.pad(voc, ((0, 0), (0, n - voc.shape[1])))
        inst = np.pad(inst, ((0, 0), (0, n - inst.shape[1])))
    out_dir.mkdir(parents=True, exist_ok=True)
    vpath = save_wav(out_dir / "vocals.wav", voc, SAMPLE_RATE, subtype="FLOAT")
    ipath = (
        save_wav(out_dir / "instrumental.wav", inst, SAMPLE_RATE, subtype="FLOAT")
        if inst is not None
        else None
    )
    return SeparationResult(vocals=vpath, instrumental=ipath, frames=voc.shape[1])
