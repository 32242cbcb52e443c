"""Feature retrieval: pull the source's content features towards the target voice's own.

The content features (whisper PPG, HuBERT-soft vec) carry some of the source singer's timbre
into the model. As so-vits-svc 5.0's ``feature_retrieval`` and RVC's faiss index do, each
frame is blended with its ``k`` nearest frames of the voice's training features:

    out = (1 - ratio) · x + ratio · Σ w_i · n_i,   w_i ∝ 1 / D_i²

where ``D_i`` is faiss's (squared-L2) distance to neighbour ``n_i``, exactly RVC's weighting.
PPG and vec get separate indexes, as 5.0 builds them. An index is IVF-Flat sized to the data
(``IVF{min(16·√N, N/39)},Flat``, one probe, as RVC and 5.0); above 200,000 vectors the
features are first reduced to 10,000 k-means centroids (RVC; learnt from a sample of 80,000
vectors, so the build stays within minutes); below 39 vectors a flat index.

``protect`` (RVC semantics, 0.5 = off) keeps the original features on unvoiced frames in the
proportion ``1 - protect`` so retrieval does not smear sibilants and breaths;
:func:`mix_volume_envelope` is RVC's ``rms_mix_rate`` (1 = the output's own loudness, 0 = the
source's envelope).

File (``*.svcindex``): a zip with ``index.json`` (format, version, dims, vector counts) and
one faiss index per feature (``ppg.faiss``, ``vec.faiss``).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svc_core.archive import RETRIEVAL_INDEX_LIMITS, open_zip, short
from svc_core.errors import BadInputError, Cancelled, IncompatibleError
from svc_core.progress import StopFn, check_stop
from svc_core.utils import atomic_path

INDEX_FORMAT = "svc-studio/retrieval-index"
INDEX_VERSION = 1
MAX_VECTORS = 200_000  # above this, k-means reduction first (RVC)
KMEANS_CENTROIDS = 10_000
# the reduction's k-means learns from a seeded sample of this many vectors per centroid
# (80,000 of them) in 10 iterations: a full k-means of every frame into 10,000 centroids
# costs N x 10,000 x 1,280 multiply-adds per iteration, about 25 minutes on one CPU core
# at 70 minutes of singing, and the sample's centroids serve retrieval as well (RVC's
# MiniBatchKMeans learns from batches too). bench/retrieval.md has the build times.
KMEANS_POINTS_PER_CENTROID = 8
KMEANS_ITERATIONS = 10
NEIGHBOURS = 8
# the default ratio and protect are svc_core.recipes' (chosen from bench/retrieval.md)
SEED = 1234
_MAX_SUMMARY_BYTES = 4096  # index.json's dims and vector counts (real: ~150 bytes)


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise BadInputError("feature retrieval needs faiss (pip install faiss-cpu)") from exc
    return faiss


def build_index(features: np.ndarray, *, seed: int = SEED):
    """A faiss index over ``features [N, D]`` (deterministic for the same input).

    Raises:
        BadInputError: no vectors, or non-finite values.
    """
    faiss = _faiss()
    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise BadInputError(f"an index needs a non-empty [N, D] feature matrix, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise BadInputError("the features to index contain NaN or infinity")
    n, dim = x.shape
    if n > MAX_VECTORS:
        km = faiss.Kmeans(
            dim,
            KMEANS_CENTROIDS,
            niter=KMEANS_ITERATIONS,
            seed=seed,
            verbose=False,
            max_points_per_centroid=KMEANS_POINTS_PER_CENTROID,
            min_points_per_centroid=1,  # no warning about the (deliberately) small sample
        )
        km.train(x)
        x = np.ascontiguousarray(km.centroids, dtype=np.float32)
        n = x.shape[0]
    n_ivf = min(int(16 * np.sqrt(n)), n // 39)
    if n_ivf < 1:
        index = faiss.IndexFlatL2(dim)
    else:
        index = faiss.index_factory(dim, f"IVF{n_ivf},Flat", faiss.METRIC_L2)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = seed
        index.train(x)
        ivf.nprobe = 1
    index.add(x)
    return index


def retrieve(features: np.ndarray, index: Any, ratio: float, k: int = NEIGHBOURS) -> np.ndarray:
    """Blend each frame of ``features [T, D]`` with its ``k`` nearest indexed frames.

    ``ratio`` 0 returns ``features`` itself (no search); 1 returns only weighted means of
    indexed frames.
    """
    if not 0.0 <= ratio <= 1.0:
        raise BadInputError(f"retrieval_ratio must lie in [0, 1], got {ratio}")
    if ratio == 0.0:
        return features
    x = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if x.ndim != 2 or x.shape[1] != index.d:
        raise IncompatibleError(
            f"the retrieval index holds {index.d}-d features, these are {list(x.shape)}"
        )
    if x.shape[0] == 0:
        return x
    dist, labels, recon = index.search_and_reconstruct(x, min(k, index.ntotal))
    valid = labels >= 0  # faiss marks missing neighbours with -1 (and a huge distance)
    d = np.where(valid, np.maximum(dist.astype(np.float64), 1e-12), 1.0)
    weight = np.where(valid, 1.0 / d**2, 0.0)
    total = weight.sum(axis=1, keepdims=True)
    found = total[:, 0] > 0
    weight = np.where(found[:, None], weight / np.maximum(total, 1e-30), 0.0)
    near = np.einsum("tk,tkd->td", weight, np.where(valid[..., None], recon, 0.0))
    out = (1.0 - ratio) * x + ratio * near
    out[~found] = x[~found]  # no neighbour found: keep the frame
    return out.astype(np.float32)


def protect_unvoiced(
    original: np.ndarray, retrieved: np.ndarray, voiced: np.ndarray, protect: float
) -> np.ndarray:
    """RVC's ``protect``: on unvoiced frames keep ``1 - protect`` of the original features
    (``protect`` ≥ 0.5: off, the retrieved features as they are). Voiced frames untouched."""
    if not 0.0 <= protect <= 0.5:
        raise BadInputError(f"protect must lie in [0, 0.5], got {protect}")
    if protect >= 0.5:
        return retrieved
    v = np.asarray(voiced, bool).reshape(-1)
    if v.shape[0] != retrieved.shape[0]:
        raise BadInputError("protect: one voicing flag per feature frame is needed")
    w = np.where(v, 1.0, protect).astype(np.float32)[:, None]
    return (retrieved * w + original * (1.0 - w)).astype(np.float32)


def mix_volume_envelope(
    source: np.ndarray, source_sr: int, output: np.ndarray, output_sr: int, rate: float
) -> np.ndarray:
    """RVC's ``rms_mix_rate``: ``output · rms_src^(1-rate) · rms_out^(rate-1)`` with RMS
    envelopes over 0.5-s frames (hop 0.5 s), interpolated per sample. ``rate`` 1: unchanged."""
    import librosa

    if not 0.0 <= rate <= 1.0:
        raise BadInputError(f"volume_envelope must lie in [0, 1], got {rate}")
    out = np.asarray(output, np.float32)
    if rate >= 1.0 or out.size == 0:
        return out

    def envelope(y: np.ndarray, sr: int) -> np.ndarray:
        """RMS over 0.5-s frames, linearly interpolated onto the output's samples."""
        rms = librosa.feature.rms(y=y, frame_length=sr // 2 * 2, hop_length=sr // 2)[0]
        pos = np.linspace(0, len(rms) - 1, num=out.shape[0])
        return np.interp(pos, np.arange(len(rms)), rms)

    src = envelope(np.asarray(source, np.float32), source_sr)
    own = np.maximum(envelope(out, output_sr), 1e-6)
    gain = np.power(src, 1.0 - rate) * np.power(own, rate - 1.0)
    return (out * gain).astype(np.float32)


@dataclass
class VoiceIndex:
    """The retrieval indexes of one voice, by feature (``ppg``, ``vec``)."""

    indexes: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def dims(self) -> dict[str, int]:
        return {k: int(ix.d) for k, ix in self.indexes.items()}

    def check_fits(self, ppg_dim: int, vec_dim: int) -> None:
        want = {k: d for k, d in (("ppg", ppg_dim), ("vec", vec_dim)) if d > 0}
        if self.dims() != want:
            raise IncompatibleError(
                f"the retrieval index holds {self.dims()} features, the voice's model "
                f"uses {want}: build the index again from this voice's training features"
            )

    def apply(
        self,
        feats: dict[str, np.ndarray],
        ratio: float,
        voiced: np.ndarray | None = None,
        protect: float = 0.5,
    ) -> dict[str, np.ndarray]:
        """Retrieval (and ``protect`` on unvoiced frames) for each indexed feature."""
        out = dict(feats)
        for key, ix in self.indexes.items():
            if key not in feats or ratio == 0.0:
                continue
            got = retrieve(feats[key], ix, ratio)
            if voiced is not None:
                got = protect_unvoiced(feats[key], got, voiced, protect)
            out[key] = got
        return out


def build_voice_index(features: dict[str, np.ndarray], *, seed: int = SEED) -> VoiceIndex:
    """Indexes of a voice from its training features ``{"ppg": [N, Dp], "vec": [N, Dv]}``."""
    indexes = {k: build_index(v, seed=seed) for k, v in features.items() if v is not None}
    if not indexes:
        raise BadInputError("no content features to index")
    info = {k: {"vectors": int(v.shape[0]), "indexed": int(indexes[k].ntotal)}
            for k, v in features.items() if v is not None}  # fmt: skip
    return VoiceIndex(indexes, {"features": info})


def dataset_features(dataset_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The training split's content features of a preprocessed dataset (manifest order)."""
    from svc_core.train.dataset import load_manifest

    root = Path(dataset_dir)
    manifest = load_manifest(root)
    out: dict[str, np.ndarray] = {}
    for key in ("ppg", "vec"):
        mats = [
            np.load(root / getattr(e, key)).astype(np.float32)
            for e in manifest.slices
            if e.split == "train" and getattr(e, key)
        ]
        if mats:
            out[key] = np.concatenate(mats, axis=0)
    if not out:
        raise BadInputError(f"the dataset in {root} has no content features to index")
    return out


def save_voice_index(index: VoiceIndex, path: str | os.PathLike) -> Path:
    """Write ``*.svcindex`` atomically (temp file + rename)."""
    faiss = _faiss()
    dest = Path(path)
    info = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "dims": index.dims(), **index.info}
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w") as z:
        z.writestr("index.json", json.dumps(info, indent=1), zipfile.ZIP_DEFLATED)
        for key, ix in index.indexes.items():
            z.writestr(f"{key}.faiss", faiss.serialize_index(ix).tobytes(), zipfile.ZIP_STORED)
    return dest


def _faiss_layout(raw: memoryview, where: str) -> None:
    """Check a serialized faiss index before faiss reads it: faiss allocates every vector
    from the size the blob declares before reading its data, so a 100-byte blob declaring
    a 50 GB vector would take 50 GB. Only the two layouts :func:`build_index` writes are
    accepted (``IxF2`` flat L2, ``IwFl`` IVF-Flat over a flat quantizer), every declared size
    must be backed by the bytes that follow, and the blob must end where the index does."""
    import struct

    pos = 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        n = struct.calcsize(fmt)
        if pos + n > len(raw):
            raise IncompatibleError(f"{where} ends inside its header")
        out = struct.unpack_from(fmt, raw, pos)
        pos += n
        return out

    def skip(n: int, what: str) -> None:
        nonlocal pos
        if n < 0 or pos + n > len(raw):
            raise IncompatibleError(f"{where}: {what} declares more data than the file holds")
        pos += n

    def header() -> tuple[bytes, int, int]:
        (fourcc,) = take("<4s")
        d, ntotal, _, _, _, metric = take("<iqqq?i")
        if metric > 1:
            take("<f")
        if not 0 < d <= 65536 or not 0 <= ntotal <= MAX_VECTORS:
            raise IncompatibleError(
                f"{where} declares {ntotal} vectors of {d} dims (at most {MAX_VECTORS})"
            )
        return fourcc, d, ntotal

    def flat(d: int, ntotal: int) -> None:
        (n,) = take("<Q")
        if n != d * ntotal:
            raise IncompatibleError(f"{where}: its vectors do not match its header")
        skip(4 * n, "the vector data")

    fourcc, d, ntotal = header()
    if fourcc == b"IxF2":
        flat(d, ntotal)
    elif fourcc == b"IwFl":
        nlist, _ = take("<QQ")
        if not 0 < nlist <= 65536:
            raise IncompatibleError(f"{where} declares {nlist} inverted lists")
        q_fourcc, q_d, q_total = header()
        if q_fourcc != b"IxF2" or q_d != d or q_total != nlist:
            raise IncompatibleError(f"{where}: its quantizer is not the flat one svc-studio writes")
        flat(q_d, q_total)
        (map_type,) = take("<b")
        (n,) = take("<Q")
        skip(8 * n, "the direct map")
        if map_type == 2:
            (n,) = take("<Q")
            skip(16 * n, "the direct map")
        lists, n_lists, code_size, kind = take("<4sQQ4s")
        if lists != b"ilar" or n_lists != nlist or code_size != 4 * d:
            raise IncompatibleError(
                f"{where}: its inverted lists are not the kind svc-studio writes"
            )
        (n,) = take("<Q")
        if kind == b"full" and n == nlist:
            skip(8 * n, "the list sizes")
            sizes = np.frombuffer(raw[pos - 8 * n : pos], dtype="<u8")
        elif kind == b"sprs" and n % 2 == 0 and n <= 2 * nlist:
            skip(8 * n, "the list sizes")
            pairs = np.frombuffer(raw[pos - 8 * n : pos], dtype="<u8").reshape(-1, 2)
            if np.any(pairs[:, 0] >= nlist):
                raise IncompatibleError(f"{where}: a list size names a list that does not exist")
            sizes = pairs[:, 1]
        else:
            raise IncompatibleError(
                f"{where}: its inverted lists are not the kind svc-studio writes"
            )
        if np.any(sizes > MAX_VECTORS) or int(sizes.sum(dtype=np.float64)) != ntotal:
            raise IncompatibleError(f"{where}: its list sizes do not add up to its vectors")
        skip(ntotal * (code_size + 8), "the inverted lists")
    else:
        raise IncompatibleError(f"{where} is not an index type svc-studio writes")
    if pos != len(raw):
        raise IncompatibleError(f"{where} has {len(raw) - pos} bytes after its index")


def load_voice_index(path: str | os.PathLike, should_stop: StopFn | None = None) -> VoiceIndex:
    """Read ``*.svcindex``.

    The zip's directory is checked before any member is read
    (:data:`svc_core.archive.RETRIEVAL_INDEX_LIMITS`), each faiss blob's declared sizes
    before faiss reads it; ``should_stop`` is checked between the chunks of the reads.

    Raises:
        BadInputError: the file does not exist.
        IncompatibleError: not an index file, an unknown version, too large, or damaged.
    """
    faiss = _faiss()
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"retrieval index {p} does not exist")
    where = f"retrieval index {p.name}"
    try:
        with open_zip(
            p,
            RETRIEVAL_INDEX_LIMITS,
            where,
            not_zip=f"{p.name} is not a readable retrieval index (not a zip file)",
        ) as z:
            info = json.loads(z.read("index.json", should_stop).decode("utf-8"))
            if not isinstance(info, dict) or info.get("format") != INDEX_FORMAT:
                raise IncompatibleError(f"{p.name} is not an svc-studio retrieval index")
            if info.get("version") != INDEX_VERSION:
                raise IncompatibleError(
                    f"{p.name} is a version {info.get('version')} retrieval index; this "
                    f"svc-studio reads version {INDEX_VERSION}"
                )
            dims = info.get("dims")
            if not isinstance(dims, dict) or not set(dims) <= {"ppg", "vec"}:
                raise IncompatibleError(f"{p.name}: index.json lists unknown features")
            indexes = {}
            for key, dim in dims.items():
                raw = z.read(f"{key}.faiss", should_stop)
                _faiss_layout(memoryview(raw), f"{p.name}: {key}.faiss")
                check_stop(should_stop)
                ix = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
                del raw
                if int(ix.d) != int(dim):
                    raise IncompatibleError(f"{p.name}: {key}.faiss is {ix.d}-d, not {dim}-d")
                indexes[key] = ix
    except (IncompatibleError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - json and faiss errors all mean "damaged"
        raise IncompatibleError(
            f"{p.name} is not a readable retrieval index ({short(exc)})"
        ) from exc
    if not indexes:
        raise IncompatibleError(f"{p.name} holds no index")
    # what callers keep (an imported voice's artifact metadata): the known keys, bounded
    kept = {k: info[k] for k in ("dims", "features") if k in info}
    try:
        summary = len(json.dumps(kept, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise IncompatibleError(f"{p.name}: index.json holds values that are not JSON") from exc
    if summary > _MAX_SUMMARY_BYTES:
        raise IncompatibleError(f"{p.name}: index.json's summary is {summary} bytes of JSON")
    return VoiceIndex(indexes, kept)


__all__ = [
    "VoiceIndex",
    "build_index",
    "build_voice_index",
    "dataset_features",
    "load_voice_index",
    "mix_volume_envelope",
    "protect_unvoiced",
    "retrieve",
    "save_voice_index",
]
