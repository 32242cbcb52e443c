"""Hostile imports are bounded: zip bombs and lying directories, unsafe names, oversized and
alias-bombed YAML, garbage and booby-trapped torch files, forged faiss blobs, absurd model
configs and oversized reports are all refused in plain words, from sizes the files declare,
before the work or memory those sizes would take; and the import can be cancelled.

Bombs are written by hand (:func:`raw_zip`): a deflate stream of zeros built from one
flushed 1 MiB block repeated, so a member declared 2 GiB costs ~2 MB and milliseconds."""

from __future__ import annotations

import io
import json
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core import archive as A
from svc_core.errors import BadInputError, Cancelled, IncompatibleError
from svc_core.model import package as P

MiB = 1 << 20


# -- builders -------------------------------------------------------------------------------


def deflated_zeros(total: int) -> bytes:
    """A raw deflate stream of ``total`` zero bytes (a multiple of 1 MiB), about total/1000."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(bytes(MiB)) + co.flush(zlib.Z_FULL_FLUSH)  # the same each time
    return block * (total // MiB) + co.flush()


def raw_zip(path: Path, members: list[tuple]) -> Path:
    """A zip of ``(name, data, method, crc, file_size)`` entries as given: the directory says
    exactly what the caller says, true or not."""
    out, cd = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        n = name.encode()
        off = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size, len(n), 0
        )
        out += n + data
        cd += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            *(0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size, len(n)),
            *(0, 0, 0, 0, 0, off),
        )
        cd += n
    n_entries = len(members)
    out += cd + struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, n_entries, n_entries, len(cd), len(out), 0
    )
    path.write_bytes(bytes(out))
    return path


def stored(name: str, data: bytes) -> tuple:
    return (name, data, 0, zlib.crc32(data), len(data))


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(src: Path, dest: Path, **replace: bytes | None) -> Path:
    """``src``'s members with some replaced (keyword = member name with ``.`` as ``__``)."""
    repl = {k.replace("__", "."): v for k, v in replace.items()}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for n in zin.namelist():
            data = repl.pop(n, zin.read(n))
            if data is not None:
                z.writestr(n, data)
        for n, data in repl.items():
            if data is not None:
                z.writestr(n, data)
    return dest


GOOD_META = {
    "features": {"f0_method": "fcpe", "ppg_model": "whisper-tiny", "vec_model": "hubert-soft"},
    "pitch_histogram": [
        {"midi": 57, "note": "A3", "seconds": 1.5, "share": 0.25},
        {"midi": 60, "note": "C4", "seconds": 4.5, "share": 0.75},
    ],
    "pitch_hop_s": 0.01,
    "train": {"step": 2, "starts_from": "scratch"},
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A real (tiny) voice package with a retrieval index."""
    from svc_core.model.builders import build_generator
    from svc_core.model.config import load_config
    from svc_core.retrieval import build_voice_index, save_voice_index
    from svc_core.train.package import write_voice_package

    d = tmp_path_factory.mktemp("pkg")
    cfg = load_config("tiny")
    torch.manual_seed(0)
    state = build_generator(cfg, inference_only=True).state_dict()
    rng = np.random.default_rng(0)
    index = save_voice_index(
        build_voice_index(
            {
                "ppg": rng.standard_normal((400, cfg.model.ppg_dim)).astype(np.float32),
                "vec": rng.standard_normal((400, cfg.model.vec_dim)).astype(np.float32),
            }
        ),
        d / "v.svcindex",
    )
    spk = np.ones(cfg.model.spk_dim, np.float32)
    return write_voice_package(d / "good.zip", cfg, state, spk, {"meta": GOOD_META}, index)


def peak_bytes(fn) -> tuple[int, BaseException | None]:
    """Peak Python-heap bytes while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    err = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        err = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, err


# -- the good package still loads ---------------------------------------------------------


def test_a_real_package_and_its_index_load(good, tmp_path):
    from svc_core.retrieval import load_voice_index

    pkg = P.load_voice_package(good)
    P.check_package_model(pkg, good.name)
    assert (
        P.checked_report_meta(pkg.meta, good.name)["pitch_histogram"]
        == (GOOD_META["pitch_histogram"])
    )
    local = P.copy_package_index(good, tmp_path / "i.svcindex")
    assert local is not None and local.read_bytes() == P.package_index(good)
    assert set(load_voice_index(local).dims()) == {"ppg", "vec"}


def test_the_caps_name_the_members_the_formats_write():
    caps = A.VOICE_PACKAGE_LIMITS.caps
    assert set(caps) == {
        P.INFO_NAME, P.CONFIG_NAME, P.WEIGHTS_NAME, P.SPEAKER_NAME, P.INDEX_NAME
    }  # fmt: skip
    assert caps[P.CONFIG_NAME] == A.MAX_YAML_BYTES == 1 * MiB
    # the largest real index (200k vectors of whisper large + HuBERT-soft) fits
    from svc_core.retrieval import MAX_VECTORS

    assert MAX_VECTORS * (1280 + 256) * 4 * 1.05 < caps[P.INDEX_NAME]
    assert MAX_VECTORS * 1280 * 4 * 1.05 < A.RETRIEVAL_INDEX_LIMITS.caps["ppg.faiss"]


# -- zip bombs and lying directories -------------------------------------------------------


def test_a_2_gib_zip_bomb_is_refused_from_the_directory_without_reading_it(
    good, tmp_path, monkeypatch
):
    parts = members_of(good)
    bomb = deflated_zeros(2 << 30)
    assert len(bomb) < 3 * MiB
    path = raw_zip(
        tmp_path / "bomb.zip",
        [stored(n, d) for n, d in parts.items() if n != P.WEIGHTS_NAME]
        + [(P.WEIGHTS_NAME, bomb, 8, 0, 2 << 30)],  # CRC never reached: nothing is read
    )
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *a, **k):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    peak, err = peak_bytes(lambda: P.load_voice_package(path))
    assert isinstance(err, IncompatibleError), err
    assert "generator.pt is 2 GiB uncompressed; at most 1 GiB" in str(err)
    assert opened == []  # refused before any member was opened
    assert peak < 4 * MiB, peak  # before: 4.7 GB peak RSS, 14 s


def test_a_bomb_under_the_member_cap_is_refused_by_its_ratio(good, tmp_path):
    parts = members_of(good)
    path = raw_zip(
        tmp_path / "ratio.zip",
        [stored(n, d) for n, d in parts.items() if n != P.WEIGHTS_NAME]
        + [(P.WEIGHTS_NAME, deflated_zeros(512 * MiB), 8, 0, 512 * MiB)],
    )
    with pytest.raises(IncompatibleError, match=r"expand \d+-fold.*100:1 is refused as a zip bomb"):
        P.load_voice_package(path)


def test_the_total_and_entry_caps(tmp_path):
    limits = A.ZipLimits(members=4, total=3000, member=2000)
    ok = raw_zip(tmp_path / "ok.zip", [stored(f"m{i}", bytes(1000)) for i in range(3)])
    A.open_zip(ok, limits, "test zip").close()
    big = raw_zip(tmp_path / "big.zip", [stored(f"m{i}", bytes(1000)) for i in range(4)])
    with pytest.raises(IncompatibleError, match="holds 3.91 KiB uncompressed; at most 2.93 KiB"):
        A.open_zip(big, limits, "test zip")
    many = raw_zip(tmp_path / "many.zip", [stored(f"m{i}", b"x") for i in range(5)])
    with pytest.raises(IncompatibleError, match="has 5 entries; at most 4"):
        A.open_zip(many, limits, "test zip")
    lots = raw_zip(tmp_path / "lots.zip", [stored(f"m{i}", b"") for i in range(65)])
    with pytest.raises(IncompatibleError, match="has 65 entries; at most 64"):
        P.load_voice_package(lots)


def test_a_directory_that_lies_about_a_size_does_not_help(good, tmp_path):
    """config.yaml declared 2 KB but holding 40 MiB of whitespace: only the declared bytes
    are read; with a wrong CRC the member is refused as damaged, with a CRC forged for the
    prefix the package loads from that prefix. Either way 40 MiB is never parsed."""
    parts = members_of(good)
    cfg = parts[P.CONFIG_NAME]
    declared = len(cfg) + 100
    content = cfg + b" " * (40 * MiB)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = co.compress(content) + co.flush()
    others = [stored(n, d) for n, d in parts.items() if n != P.CONFIG_NAME]
    for crc, outcome in ((zlib.crc32(content), "damaged"), (zlib.crc32(content[:declared]), "ok")):
        path = raw_zip(
            tmp_path / f"lie-{outcome}.zip", [(P.CONFIG_NAME, packed, 8, crc, declared), *others]
        )
        peak, err = peak_bytes(lambda p=path: P.load_voice_package(p))
        if outcome == "damaged":
            assert isinstance(err, IncompatibleError) and "config.yaml is damaged" in str(err)
            assert "CRC" in str(err)
        else:
            assert err is None, err
        assert peak < 40 * MiB, peak
    # a stored member's two sizes must agree; a member must lie inside the file
    entry = (P.CONFIG_NAME, cfg, 0, zlib.crc32(cfg), len(cfg) * 1000)
    path = raw_zip(tmp_path / "inconsistent.zip", [entry, *others])
    with pytest.raises(IncompatibleError, match="inconsistent"):
        P.load_voice_package(path)
    cut = tmp_path / "cut.zip"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) // 3] + data[-2000:])  # directory kept, data cut
    with pytest.raises(IncompatibleError):
        P.load_voice_package(cut)


def test_read_streams_in_chunks_and_stops_at_the_declared_size(tmp_path):
    path = raw_zip(tmp_path / "z.zip", [stored("a", b"x" * (3 * MiB + 5))])
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with A.open_zip(path, A.ZipLimits(members=2, total=8 * MiB, member=4 * MiB), "z") as z:
        assert len(z.read("a")) == 3 * MiB + 5
        with pytest.raises(Cancelled):
            z.read("a", should_stop=stop)
    assert len(calls) == 3  # checked between 1 MiB chunks


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../../etc/cron.d/x", "/etc/passwd", "a/../../b", "C:\\windows\\x", "..\\x"]
)
def test_unsafe_member_names_are_refused(good, tmp_path, name):
    parts = members_of(good)
    path = raw_zip(
        tmp_path / "t.zip", [*(stored(n, d) for n, d in parts.items()), stored(name, b"")]
    )
    with pytest.raises(IncompatibleError, match="unsafe name"):
        P.load_voice_package(path)


def test_a_member_twice_is_refused(good, tmp_path):
    parts = members_of(good)
    entries = [stored(n, d) for n, d in parts.items()]
    fake = json.dumps({"format": "svc-studio/voice", "version": 2}).encode()
    path = raw_zip(tmp_path / "dup.zip", [*entries, stored(P.INFO_NAME, fake)])
    with pytest.raises(IncompatibleError, match="voice.json' twice"):
        P.load_voice_package(path)


def test_not_a_zip_and_encrypted(good, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK" + bytes(100))
    with pytest.raises(IncompatibleError, match="not a voice package"):
        P.load_voice_package(junk)
    data = bytearray(good.read_bytes())
    # set the "encrypted" flag of every central directory entry
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        data[pos + 8] |= 1
        pos = data.find(b"PK\x01\x02", pos + 4)
    enc = tmp_path / "enc.zip"
    enc.write_bytes(bytes(data))
    with pytest.raises(IncompatibleError, match="is encrypted"):
        P.load_voice_package(enc)


# -- YAML ----------------------------------------------------------------------------------


def test_an_oversized_config_yaml_is_refused_before_parsing(good, tmp_path):
    parts = members_of(good)
    big = parts[P.CONFIG_NAME] + b"#" + bytes(range(32, 127)) * (2 * MiB // 95)
    path = raw_zip(
        tmp_path / "y.zip",
        [stored(n, big if n == P.CONFIG_NAME else d) for n, d in parts.items()],
    )
    with pytest.raises(IncompatibleError, match="config.yaml is 2 MiB uncompressed; at most 1 MiB"):
        P.load_voice_package(path)


def test_yaml_alias_bombs_and_deep_nesting_are_refused(tmp_path):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 6):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = "\n".join(lines) + "\n"
    assert len(bomb) < 1000
    with pytest.raises(IncompatibleError, match="more than 10000 values"):
        A.load_yaml(bomb, "bomb.yaml")
    with pytest.raises(IncompatibleError, match="not valid YAML"):
        A.load_yaml("[" * 100_000, "deep.yaml")
    with pytest.raises(IncompatibleError, match="not UTF-8"):
        A.load_yaml(b"\xff\xfe", "bin.yaml")
    with pytest.raises(BadInputError, match="larger than 1 MiB"):
        A.load_yaml(" " * (MiB + 1), "big.yaml", error=BadInputError)


def test_5_0_hparams_and_hp_str_are_capped(tmp_path):
    from svc_core.model.sovits5 import load_hparams_yaml, parse_sovits5

    big = tmp_path / "big.yaml"
    big.write_text("data: {}\n" + " " * (2 * MiB))
    with pytest.raises(BadInputError, match="larger than 1 MiB"):
        load_hparams_yaml(big)
    state = {"w": torch.zeros(2)}
    with pytest.raises(BadInputError, match=r"hp_str\) is larger than 1 MiB"):
        parse_sovits5({"model_g": state, "hp_str": "a: 1\n" + " " * (2 * MiB)}, big)
    with pytest.raises(BadInputError, match="more than 10000 values"):
        lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 6)]
        parse_sovits5({"model_g": state, "hp_str": "\n".join(lines)}, big)


# -- configs asking for absurd models ------------------------------------------------------


def _with_config(good: Path, tmp_path: Path, name: str, section="model", **values) -> Path:
    import yaml

    cfg = yaml.safe_load(members_of(good)[P.CONFIG_NAME])
    cfg[section].update(values)
    return rezip(good, tmp_path / name, config__yaml=yaml.safe_dump(cfg).encode())


def test_absurd_model_sizes_are_refused_without_building_them(good, tmp_path):
    path = _with_config(good, tmp_path, "huge.zip", hidden_channels=1_000_000)
    pkg = P.load_voice_package(path)
    with pytest.raises(IncompatibleError, match="hidden_channels = 1000000 is out of range"):
        P.check_package_model(pkg, path.name)
    # in range but not what the weights are: compared on the meta device, nothing allocated
    path = _with_config(good, tmp_path, "wide.zip", hidden_channels=4096, filter_channels=16384)
    pkg = P.load_voice_package(path)
    peak, err = peak_bytes(lambda: P.check_package_model(pkg, path.name))
    assert isinstance(err, IncompatibleError) and "differ in shape" in str(err), err
    assert peak < 64 * MiB, peak  # the real model would take ~4 GB
    # a signal no real voice has: conversions would resample to it
    path = _with_config(good, tmp_path, "rate.zip", "audio", sample_rate=10**9)
    with pytest.raises(IncompatibleError, match="audio.sample_rate = 1000000000 is out of range"):
        P.check_package_model(P.load_voice_package(path), path.name)
    path = _with_config(good, tmp_path, "zero.zip", n_heads=0)
    with pytest.raises(IncompatibleError, match="bad config.yaml"):
        P.load_voice_package(path)  # a ZeroDivisionError inside, in plain words


# -- torch files ---------------------------------------------------------------------------


def _torch_file(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


def test_garbage_and_legacy_torch_files_are_refused_plainly(tmp_path):
    from svc_core.model.sovits5 import read_torch_file

    junk = tmp_path / "junk.pth"
    junk.write_bytes(np.random.default_rng(0).bytes(10_000))
    with pytest.raises(IncompatibleError, match="not a readable model file"):
        read_torch_file(junk)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"model_g": {}}))
    with pytest.raises(IncompatibleError, match="not a zip-format torch file"):
        read_torch_file(legacy)
    not_torch = raw_zip(tmp_path / "z.pth", [stored("archive/data.pkl", b"garbage")])
    with pytest.raises(IncompatibleError, match="not a readable model file"):
        read_torch_file(not_torch)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned-by-import",))


def test_a_torch_file_that_would_run_code_is_refused(tmp_path, monkeypatch):
    from svc_core.model.sovits5 import read_torch_file

    monkeypatch.chdir(tmp_path)
    real = _torch_file(tmp_path / "real.pth", {"model_g": {"w": torch.zeros(2)}})
    parts = members_of(real)
    pkl = next(n for n in parts if n.endswith("data.pkl"))
    evil = raw_zip(
        tmp_path / "evil.pth",
        [stored(n, pickle.dumps(_Evil(), protocol=2) if n == pkl else d) for n, d in parts.items()],
    )
    with pytest.raises(IncompatibleError, match="not a readable model file"):
        read_torch_file(evil)
    assert not (tmp_path / "pwned-by-import").exists()


def test_a_torch_record_declared_huge_is_refused_before_torch_load(tmp_path, monkeypatch):
    from svc_core.model import sovits5

    real = _torch_file(tmp_path / "real.pth", {"model_g": {"w": torch.zeros(2)}})
    parts = members_of(real)
    rec = next(n for n in parts if "/data/" in n)
    path = raw_zip(
        tmp_path / "huge.pth",
        [stored(n, d) for n, d in parts.items() if n != rec]
        + [(rec, deflated_zeros(1536 * MiB), 8, 0, 1536 * MiB)],
    )
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(IncompatibleError, match="is 1.5 GiB uncompressed; at most 1 GiB"):
        sovits5.read_torch_file(path)
    assert loads == []


def test_a_package_whose_generator_pt_is_a_torch_bomb_is_refused(good, tmp_path):
    """generator.pt is itself a torch zip: its own directory is checked before torch.load."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    inner = tmp_path / "inner.pt"
    inner.write_bytes(buf.getvalue())
    parts = members_of(inner)
    rec = next(n for n in parts if "/data/" in n)
    bomb = raw_zip(
        tmp_path / "bomb.pt",
        [stored(n, d) for n, d in parts.items() if n != rec]
        + [(rec, deflated_zeros(256 * MiB), 8, 0, 256 * MiB)],
    )
    outer = members_of(good)
    outer[P.WEIGHTS_NAME] = bomb.read_bytes()
    path = raw_zip(tmp_path / "g.zip", [stored(n, d) for n, d in outer.items()])
    with pytest.raises(IncompatibleError, match=r"generator.pt: .*refused as a zip bomb"):
        P.load_voice_package(path)


def test_malformed_5_0_content_is_refused_plainly(tmp_path):
    from svc_core.model.sovits5 import parse_sovits5

    hp = (Path(__file__).parents[1] / "data" / "sovits5" / "tiny" / "hparams.yaml").read_text()
    w = {"w": torch.zeros(2)}
    with pytest.raises(IncompatibleError, match="'model_g' is not a state dict of tensors"):
        parse_sovits5({"model_g": {"w": 3}}, tmp_path / "x.pth")
    with pytest.raises(IncompatibleError, match="'model_d' is not a state dict"):
        parse_sovits5({"model_g": w, "model_d": [1]}, tmp_path / "x.pth")
    bad_step = {"model_g": w, "optim_g": {}, "optim_d": {}, "step": "abc", "hp_str": hp}
    with pytest.raises(IncompatibleError, match="a bad value where 5.0 writes a number"):
        parse_sovits5(bad_step, tmp_path / "x.pth")
    with pytest.raises(BadInputError, match="missing or bad value"):
        bad = hp.replace("hidden_channels: 16", "hidden_channels: sixteen")
        parse_sovits5({"model_g": w, "hp_str": bad}, tmp_path / "x.pth")


def test_an_oversized_speaker_file_is_refused_before_loading(tmp_path):
    from svc_core.train.package import _speaker_vector

    big = tmp_path / "big.spk.npy"
    np.save(big, np.zeros(1 << 20, np.float32))
    with pytest.raises(BadInputError, match="is not one"):
        _speaker_vector(big, 256)


def test_a_speaker_member_declaring_a_huge_shape_is_refused(good, tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros(4, np.float32))
    npy = buf.getvalue().replace(b"(4,)", b"(1000000000000,)")
    path = rezip(good, tmp_path / "spk.zip", speaker__spk__npy=npy)
    with pytest.raises(IncompatibleError, match="damaged: an array of shape"):
        P.load_voice_package(path)


# -- retrieval indexes -------------------------------------------------------------------


def _forged_flat(declared_floats: int, d: int = 4, ntotal: int = 3) -> bytes:
    """A flat index of 3 4-d vectors whose header says ``d`` × ``ntotal`` and whose codes
    vector declares ``declared_floats``."""
    import faiss

    ix = faiss.IndexFlatL2(4)
    ix.add(np.ones((3, 4), np.float32))
    b = bytearray(faiss.serialize_index(ix).tobytes())
    b[4:16] = struct.pack("<iq", d, ntotal)
    b[37:45] = struct.pack("<Q", declared_floats)  # the codes vector's declared length
    return bytes(b)


def test_a_faiss_blob_declaring_a_huge_vector_is_refused_before_faiss_reads_it(
    good, tmp_path, monkeypatch
):
    """Faiss allocates a vector from the size a blob declares before reading its data: 93
    bytes declaring 1 GiB cost 1 GiB of RSS; declaring 50 GB would take the worker down."""
    import faiss

    from svc_core import retrieval as R

    index = P.copy_package_index(good, tmp_path / "v.svcindex")
    assert index is not None
    called = []
    monkeypatch.setattr(faiss, "deserialize_index", lambda *a: called.append(a))
    for i, (blob, expect) in enumerate(
        (
            (_forged_flat(1 << 28, 65536, 4096), "declares more data than the file holds"),
            (_forged_flat(1 << 28), "its vectors do not match its header"),
            (_forged_flat(1 << 28, 1280, 1 << 40), "declares 1099511627776 vectors"),
        )
    ):
        forged = rezip(index, tmp_path / f"forged{i}.svcindex", ppg__faiss=blob)
        with pytest.raises(IncompatibleError, match=expect):
            R.load_voice_index(forged)
    with zipfile.ZipFile(index) as z:  # an IVF index whose list sizes are forged
        ivf = bytearray(z.read("ppg.faiss"))
    pos = ivf.find(b"full") + 12  # after "full" and the sizes vector's length
    ivf[pos : pos + 8] = struct.pack("<Q", 1 << 40)
    forged = rezip(index, tmp_path / "ivf.svcindex", ppg__faiss=bytes(ivf))
    with pytest.raises(IncompatibleError, match="list sizes do not add up"):
        R.load_voice_index(forged)
    other = rezip(index, tmp_path / "other.svcindex", ppg__faiss=b"IxPQ" + bytes(200))
    with pytest.raises(IncompatibleError, match="not an index type svc-studio writes|declares"):
        R.load_voice_index(other)
    assert called == []


def test_an_index_summary_is_bounded(good, tmp_path):
    from svc_core import retrieval as R

    index = P.copy_package_index(good, tmp_path / "v.svcindex")
    assert index is not None
    info = json.loads(members_of(index)["index.json"])
    assert set(R.load_voice_index(index).info) <= {"dims", "features"}
    info["features"] = {"ppg": {"notes": ["x" * 100] * 100}}
    big = rezip(index, tmp_path / "big.svcindex", index__json=json.dumps(info).encode())
    with pytest.raises(IncompatibleError, match="summary is"):
        R.load_voice_index(big)


# -- stored reports ------------------------------------------------------------------------


def test_report_meta_is_checked_and_bounded():
    out = P.checked_report_meta(
        {**GOOD_META, "pitch_histogram": [{**GOOD_META["pitch_histogram"][0], "junk": "x" * 99}]},
        "v.zip",
    )
    assert out["pitch_histogram"] == [GOOD_META["pitch_histogram"][0]]  # four fields only
    assert out["pitch_hop_s"] == 0.01 and out["features"] == GOOD_META["features"]
    assert P.checked_report_meta({}, "v.zip") == {
        "features": {}, "pitch_histogram": [], "pitch_hop_s": 0.01, "train": None,
    }  # fmt: skip
    huge = [{"midi": 60, "note": "C4", "seconds": 1.0, "share": 0.0}] * 300_000
    with pytest.raises(IncompatibleError, match="300000 bins.*at most 256"):
        P.checked_report_meta({"pitch_histogram": huge}, "v.zip")
    bad = [
        {"pitch_histogram": "C4"},
        {"pitch_histogram": [{"midi": "60", "note": "C4", "seconds": 1, "share": 1}]},
        {"pitch_histogram": [{"midi": 60, "note": "C4", "seconds": float("nan"), "share": 1}]},
        {"pitch_histogram": [[60, "C4", 1, 1]]},
        {"pitch_hop_s": "fast"},
        {"pitch_hop_s": 1e9},
        {"features": ["fcpe"]},
        {"features": {"f0_method": ["x"] * 10}},
        {"features": {"f0_method": "fcpe", "start": {"x": "y" * 20_000}}},
        {"train": "lots"},
        {"train": {"notes": ["z" * 1000] * 20}},
        {"train": {"best_val_mel": float("inf")}},
    ]
    for meta in bad:
        with pytest.raises(IncompatibleError, match="voice package v.zip"):
            P.checked_report_meta(meta, "v.zip")


def test_a_meta_that_is_not_a_mapping_is_refused(good, tmp_path):
    info = json.loads(members_of(good)[P.INFO_NAME])
    info["meta"] = ["x"]
    path = rezip(good, tmp_path / "m.zip", voice__json=json.dumps(info).encode())
    with pytest.raises(IncompatibleError, match="'meta' of voice.json is not a mapping"):
        P.load_voice_package(path)
    parts = members_of(good)
    deep = [stored(n, b"[" * 100_000 if n == P.INFO_NAME else d) for n, d in parts.items()]
    path = raw_zip(tmp_path / "deep.zip", deep)
    with pytest.raises(IncompatibleError, match="unreadable voice.json"):
        P.load_voice_package(path)


# -- cancellation --------------------------------------------------------------------------


def test_loading_stops_when_asked(good, tmp_path):
    with pytest.raises(Cancelled):
        P.load_voice_package(good, should_stop=lambda: True)
    with pytest.raises(Cancelled):
        P.copy_package_index(good, tmp_path / "i.svcindex", should_stop=lambda: True)
    from svc_core.retrieval import load_voice_index

    local = P.copy_package_index(good, tmp_path / "j.svcindex")
    assert local is not None
    with pytest.raises(Cancelled):
        load_voice_index(local, should_stop=lambda: True)


def test_a_5_0_import_stops_when_asked(tmp_path):
    from svc_core.train.package import import_sovits5_voice
    from tests.common import sovits5_golden as G

    files = G.write_layouts("tiny", tmp_path)
    spk = tmp_path / "s.spk.npy"
    np.save(spk, G.inputs("tiny")["spk"])
    calls = []

    def stop_after(n):
        def stop():
            calls.append(1)
            return len(calls) > n

        return stop

    for n in range(3):
        calls.clear()
        with pytest.raises(Cancelled):
            import_sovits5_voice(
                files["checkpoint"], spk, tmp_path / "v.zip", should_stop=stop_after(n)
            )
    assert not (tmp_path / "v.zip").exists()
