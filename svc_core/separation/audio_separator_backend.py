"""python-audio-separator (UVR's MDX-Net, VR, MDX23C/Roformer and Demucs models) as a backend.

What this wrapper adds to ``audio_separator.separator.Separator`` (0.47.x), and why:

* One ``Separator`` per (models folder, model file, options), loaded once per process and reused
  (audio-separator would otherwise rebuild the onnxruntime/torch model for every song).
* Never a download: every file audio-separator would fetch is checked to be present first
  (``download_checks.json``; ``mdx_model_data.json`` and ``vr_model_data.json`` for models it
  identifies by MD5), so a missing file is an :class:`AssetMissingError` naming the command.
* ``model_file_dir`` is forced to ``models_dir`` after construction: audio-separator silently
  prefers the ``AUDIO_SEPARATOR_MODEL_DIR`` environment variable otherwise.
* Failures become plain :class:`SvcError`\\ s, including ``SystemExit``: audio-separator calls
  ``sys.exit(1)`` when an MDX23C/Roformer checkpoint fails to load, which would end a worker.
* No level changes: the caller feeds audio peaking at 1.0, and each loaded model's
  ``normalization_threshold`` is raised so stems are written as computed. (audio-separator
  0.47.1 rescales every stem peaking above the threshold independently, which breaks
  ``instrumental = mixture - vocals``, and its MDX path multiplies the primary stem by the input
  peak, which is harmless only when that peak is 1.0.)
* Stems are written by soundfile in the input's subtype (32-bit float), not 16-bit via pydub.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svc_core.errors import AssetMissingError, BadAudioError, Cancelled, SvcError
from svc_core.separation.backend import BackendOptions, SeparatorBackend
from svc_core.utils import ModelCache

SAMPLE_RATE = 44100
# Stems are rescaled by audio-separator only above this peak: i.e. never, in practice.
_NO_RENORMALISE = 1.0e6
_STEM_RE = re.compile(r"_\(([^)]+)\)")
# audio-separator's model lists; it indexes every one of them.
_DOWNLOAD_CHECK_KEYS = (
    "vr_download_list",
    "mdx_download_list",
    "mdx_download_vip_list",
    "demucs_download_list",
    "mdx23c_download_list",
    "mdx23c_download_vip_list",
    "roformer_download_list",
)


@dataclass
class _Loaded:
    separator: object
    lock: threading.Lock = field(default_factory=threading.Lock)


def _asset_hint(filename: str) -> str:
    """The registry name owning ``filename`` (for fetch hints), else the file name."""
    from svc_core.assets import REGISTRY

    for asset in REGISTRY.values():
        if asset.filename == filename:
            return asset.name
    return filename


def _missing(filename: str, models_dir: Path, needed_by: str) -> AssetMissingError:
    from svc_core.assets import missing_message

    name = _asset_hint(filename)
    if name == filename:  # not a registry file: no pull command can fetch it
        return AssetMissingError(
            f"'{filename}' (needed by separation model '{needed_by}') is not in {models_dir}; "
            f"place it there, or use a model from `svc-studio assets list --kind separation`"
        )
    return AssetMissingError(missing_message(name, models_dir))


def check_model_files(model_file: str, models_dir: Path) -> None:
    """Raise AssetMissingError unless everything audio-separator reads for the model is there."""
    import json

    if not (models_dir / model_file).is_file():
        raise _missing(model_file, models_dir, model_file)
    checks_path = models_dir / "download_checks.json"
    if not checks_path.is_file():
        raise _missing("download_checks.json", models_dir, model_file)
    try:
        checks = json.loads(checks_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SvcError(
            f"{checks_path} is damaged ({exc}); run `svc-studio assets pull uvr-download-checks "
            f"--force`"
        ) from exc
    missing_keys = [k for k in _DOWNLOAD_CHECK_KEYS if k not in checks]
    if missing_keys:
        raise SvcError(
            f"{checks_path} is not the model list audio-separator expects (no "
            f"{', '.join(missing_keys)}); run `svc-studio assets pull uvr-download-checks --force`"
        )
    if model_file.endswith((".onnx", ".pth")):
        # Identified by MD5: audio-separator opens both model-data files (downloads if absent).
        for sidecar in ("mdx_model_data.json", "vr_model_data.json"):
            if not (models_dir / sidecar).is_file():
                raise _missing(sidecar, models_dir, model_file)
    else:
        # MDX23C/Roformer: a YAML config named next to the checkpoint in download_checks.json.
        for key in ("mdx23c_download_list", "roformer_download_list"):
            for entry in (checks.get(key) or {}).values():
                if isinstance(entry, dict) and model_file in entry:
                    config = entry[model_file]
                    if not (models_dir / config).is_file():
                        raise _missing(config, models_dir, model_file)


# Which of a run's tqdm loops walks the model over the audio (the one whose progress is shown;
# the others only check for a stop): MDX-Net's second loop rebuilds the other stem without
# the model, VR's first prepares the frequency bands.
_WORK_LOOP = {"vr_separator": 1}


@contextmanager
def _reporting_chunks(
    model: Any, on_chunk: Callable[[float | None], None] | None
) -> Iterator[None]:
    """audio-separator tells only tqdm how far its chunk loop is (``for i in tqdm(...)`` in
    each architecture module). For one run, the ``tqdm`` of the running model's module is a
    plain loop that calls ``on_chunk`` before each chunk: with the fraction done in the loop
    that runs the model (``_WORK_LOOP``), with None elsewhere (a stop check only), so the
    stage reports progress within a pass and a cancel (``on_chunk`` raising Cancelled) stops
    between chunks instead of after the whole song. The worker runs one separation at a time
    and ``_Loaded.lock`` serialises a model, so swapping the module's name is safe here."""
    module = sys.modules.get(type(model).__module__) if model is not None else None
    if on_chunk is None or module is None or not hasattr(module, "tqdm"):
        yield
        return
    report = on_chunk
    work_loop = _WORK_LOOP.get(module.__name__.rsplit(".", 1)[-1], 0)
    loops = 0

    def chunks(iterable: Any, *_args: Any, **_kwargs: Any) -> Iterator[Any]:
        nonlocal loops
        shown = loops == work_loop
        loops += 1
        items = list(iterable)
        for i, item in enumerate(items):
            report(i / max(len(items), 1) if shown else None)
            yield item
        if shown:
            report(1.0)

    original = module.tqdm
    module.tqdm = chunks
    try:
        yield
    finally:
        module.tqdm = original


class AudioSeparatorBackend(SeparatorBackend):
    """Separation through ``audio_separator.separator.Separator``; models cached per process."""

    def __init__(self) -> None:
        self._cache: ModelCache[tuple, _Loaded] = ModelCache()

    # -- loading ---------------------------------------------------------------------------

    def _load(
        self, model_file: str, models_dir: Path, work_dir: Path, opts: BackendOptions
    ) -> _Loaded:
        check_model_files(model_file, models_dir)
        st = (models_dir / model_file).stat()
        # A replaced file (re-pulled after damage) must not reuse the old loaded model.
        key = (str(models_dir.resolve()), model_file, st.st_size, st.st_mtime_ns, opts)
        return self._cache.get_or_load(
            key, lambda: _Loaded(self._new_separator(model_file, models_dir, work_dir, opts))
        )

    def _new_separator(
        self, model_file: str, models_dir: Path, work_dir: Path, opts: BackendOptions
    ) -> object:
        # Separator() calls warnings.filterwarnings("ignore") for the whole process; keep that
        # local. Its import pulls torch, onnxruntime and librosa: imported here, not at the top.
        with warnings.catch_warnings():
            try:
                from audio_separator.separator import Separator

                sep = Separator(
                    log_level=logging.ERROR,  # it logs every stem write at WARNING
                    model_file_dir=str(models_dir),
                    output_dir=str(work_dir),
                    output_format="WAV",
                    sample_rate=SAMPLE_RATE,
                    use_soundfile=True,
                    normalization_threshold=1.0,
                    amplification_threshold=0.0,
                    mdx_params={
                        "hop_length": 1024,
                        "segment_size": opts.segment_size,
                        "overlap": opts.overlap,
                        "batch_size": opts.batch_size,
                        "enable_denoise": False,
                    },
                )
            except FileNotFoundError as exc:
                raise SvcError(
                    f"audio-separator could not start ({exc}); it needs the ffmpeg program "
                    f"(Debian/Ubuntu: apt-get install ffmpeg)"
                ) from exc
            sep.model_file_dir = str(models_dir)
            try:
                sep.load_model(model_file)
            except SystemExit as exc:
                raise self._load_error(
                    model_file, models_dir, f"loader exited ({exc.code})"
                ) from None
            except AssetMissingError:
                raise
            except Exception as exc:  # noqa: BLE001 - every loader failure is the same for users
                raise self._load_error(model_file, models_dir, str(exc)) from exc
        sep.model_instance.normalization_threshold = _NO_RENORMALISE
        return sep

    @staticmethod
    def _load_error(model_file: str, models_dir: Path, reason: str) -> SvcError:
        name = _asset_hint(model_file)
        reason = reason.strip().splitlines()[0][:300] if reason.strip() else "unknown error"
        if "Unsupported Model File" in reason or "could not be found in UVR model data" in reason:
            why = (
                "its MD5 is not listed in mdx_model_data.json / vr_model_data.json, so the file "
                "is damaged, incomplete or not a supported model"
            )
        elif "not found in supported model files" in reason:
            why = "download_checks.json does not list this file name"
        else:
            why = f"the file may be damaged ({reason})"
        fix = (
            f"run `svc-studio assets pull {name} --force`"
            if name != model_file
            else "replace the file"
        )
        return SvcError(f"separation model '{name}' in {models_dir} failed to load: {why}; {fix}")

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        model_file: str,
        models_dir: Path,
        wav: Path,
        work_dir: Path,
        options: BackendOptions,
        on_chunk: Callable[[float | None], None] | None = None,
    ) -> dict[str, Path]:
        models_dir = Path(models_dir)
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        loaded = self._load(model_file, models_dir, work_dir, options)
        sep = loaded.separator
        from audio_separator.separator import InvalidAudioDataError

        with loaded.lock:  # the Separator keeps per-file state; one song at a time
            sep.output_dir = str(work_dir)
            sep.model_instance.output_dir = str(work_dir)
            try:
                with _reporting_chunks(sep.model_instance, on_chunk):
                    files = sep.separate(str(wav))
            except Cancelled:
                raise
            except InvalidAudioDataError as exc:
                raise BadAudioError(f"the audio cannot be separated: {exc}") from exc
            except SystemExit as exc:
                raise SvcError(
                    f"separation model '{_asset_hint(model_file)}' stopped with exit code "
                    f"{exc.code}"
                ) from None
            except Exception as exc:  # noqa: BLE001
                raise SvcError(
                    f"separation with '{_asset_hint(model_file)}' failed: {exc}"
                ) from exc
        stems: dict[str, Path] = {}
        for f in files or []:
            path = Path(f) if Path(f).is_absolute() else work_dir / f
            match = _STEM_RE.search(path.name)
            stem = match.group(1).lower() if match else path.stem.lower()
            stems[stem] = path
        if not stems:
            raise SvcError(f"separation with '{_asset_hint(model_file)}' produced no stems")
        return stems

    def loaded_models(self) -> list[tuple]:
        """Cache keys of the models loaded in this process (for tests and diagnostics)."""
        return list(self._cache)

    def clear(self) -> None:
        """Forget every loaded model (frees memory; the next run loads again)."""
        self._cache.clear()
