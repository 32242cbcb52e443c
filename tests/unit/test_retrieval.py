"""Feature retrieval (svc_core.retrieval): the index, the blend, protect, volume envelope."""

from __future__ import annotations

import numpy as np
import pytest

from svc_core import retrieval as R
from svc_core.errors import BadInputError, IncompatibleError


def _data(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("n", [20, 3000])  # a flat index (< 39 vectors) and IVF-Flat
def test_ratio_1_gives_only_training_frames_or_their_weighted_means(n):
    train = _data(n)
    index = R.build_index(train)
    # a training frame itself comes back (its own distance is 0: all the weight)
    got = R.retrieve(train[:10], index, 1.0)
    np.testing.assert_allclose(got, train[:10], atol=1e-5)
    # any other frame becomes a convex combination of indexed training frames
    q = _data(50, seed=1)
    got = R.retrieve(q, index, 1.0)
    dist, labels = index.search(q, 8)
    for t in range(len(q)):
        ok = labels[t] >= 0
        w = 1.0 / np.maximum(dist[t][ok], 1e-12) ** 2
        want = (w[:, None] * train[labels[t][ok]]).sum(0) / w.sum()
        np.testing.assert_allclose(got[t], want, rtol=1e-4, atol=1e-5)
    half = R.retrieve(q, index, 0.5)
    np.testing.assert_allclose(half, 0.5 * q + 0.5 * got, atol=1e-5)


def test_ratio_0_returns_the_features_themselves():
    q = _data(10)
    assert R.retrieve(q, R.build_index(_data(100)), 0.0) is q


def test_an_index_built_twice_from_the_same_features_is_identical(monkeypatch):
    import faiss

    train = _data(3000)
    a = faiss.serialize_index(R.build_index(train)).tobytes()
    b = faiss.serialize_index(R.build_index(train)).tobytes()
    assert a == b
    # the k-means reduction above MAX_VECTORS (200k) too, at small sizes
    monkeypatch.setattr(R, "MAX_VECTORS", 1000)
    monkeypatch.setattr(R, "KMEANS_CENTROIDS", 100)
    a, b = R.build_index(train), R.build_index(train)
    assert a.ntotal == 100
    assert faiss.serialize_index(a).tobytes() == faiss.serialize_index(b).tobytes()


def test_protect_leaves_voiced_frames_alone():
    orig, retr = _data(6, seed=2), _data(6, seed=3)
    voiced = np.array([1, 0, 1, 0, 0, 1], bool)
    got = R.protect_unvoiced(orig, retr, voiced, 0.33)
    np.testing.assert_array_equal(got[voiced], retr[voiced])
    np.testing.assert_allclose(got[~voiced], 0.33 * retr[~voiced] + 0.67 * orig[~voiced], atol=1e-6)
    assert R.protect_unvoiced(orig, retr, voiced, 0.5) is retr  # 0.5 = off (RVC)
    with pytest.raises(BadInputError):
        R.protect_unvoiced(orig, retr, voiced, 0.7)


def test_volume_envelope_follows_the_source_at_0_and_is_off_at_1():
    sr = 16000
    t = np.arange(sr * 4) / sr
    source = (np.sin(2 * np.pi * 220 * t) * np.where(t < 2, 0.5, 0.05)).astype(np.float32)
    output = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    assert R.mix_volume_envelope(source, sr, output, sr, 1.0) is output
    got = R.mix_volume_envelope(source, sr, output, sr, 0.0)

    def rms(x):
        return float(np.sqrt(np.mean(x**2)))

    assert rms(got[:sr]) / rms(got[3 * sr :]) == pytest.approx(10.0, rel=0.15)


def test_save_load_and_refusals(tmp_path):
    index = R.build_voice_index({"ppg": _data(500, 12), "vec": _data(500, 8, seed=4)})
    path = R.save_voice_index(index, tmp_path / "v.svcindex")
    back = R.load_voice_index(path)
    assert back.dims() == {"ppg": 12, "vec": 8}
    q = {"ppg": _data(5, 12, seed=5), "vec": _data(5, 8, seed=6)}
    a, b = index.apply(q, 0.75), back.apply(q, 0.75)
    for k in q:
        np.testing.assert_array_equal(a[k], b[k])
    back.check_fits(12, 8)
    with pytest.raises(IncompatibleError, match="build the index again"):
        back.check_fits(1280, 256)
    junk = tmp_path / "junk.svcindex"
    junk.write_bytes(b"not an index")
    with pytest.raises(IncompatibleError, match="not a readable retrieval index"):
        R.load_voice_index(junk)
    import zipfile

    other = tmp_path / "other.svcindex"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("index.json", '{"format": "something-else"}')
    with pytest.raises(IncompatibleError, match="not an svc-studio retrieval index"):
        R.load_voice_index(other)
    newer = tmp_path / "newer.svcindex"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(newer, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "index.json":
                data = data.replace(b'"version": 1', b'"version": 9')
            zout.writestr(item, data)
    with pytest.raises(IncompatibleError, match="version 9"):
        R.load_voice_index(newer)
    cut = tmp_path / "cut.svcindex"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IncompatibleError):
        R.load_voice_index(cut)
    with pytest.raises(BadInputError, match="does not exist"):
        R.load_voice_index(tmp_path / "missing.svcindex")
    with pytest.raises(BadInputError):
        R.build_index(np.zeros((0, 4), np.float32))


def test_cli_index_build_and_info(tmp_path):
    from click.testing import CliRunner

    from svc_core.cli import engine
    from tests.common.train_data import make_dataset

    ds = make_dataset(tmp_path / "ds", n_train=3, n_valid=1)
    out = tmp_path / "voice.svcindex"
    r = CliRunner().invoke(engine, ["index", "build", str(ds), str(out)])
    assert r.exit_code == 0, r.output
    assert R.load_voice_index(out).dims() == {"ppg": 32, "vec": 16}
    r = CliRunner().invoke(engine, ["index", "info", str(out)])
    assert r.exit_code == 0 and '"ppg": 32' in r.output
