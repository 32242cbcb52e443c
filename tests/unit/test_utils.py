"""svc_core.utils: atomic writes, file hashing, device resolution, lazy registries, model caches."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from svc_core.errors import BadInputError
from svc_core.utils import (
    LazyRegistry,
    ModelCache,
    atomic_path,
    atomic_write,
    file_sha256,
    resolve_device,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[2]


# --- atomic writes --------------------------------------------------------------------------


def test_atomic_write_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "data.bin"  # the folder is created
    with atomic_write(target) as f:
        f.write(b"one")
        assert not target.exists()  # nothing under the final name until the block returns
    assert target.read_bytes() == b"one"
    with atomic_write(target, "w") as f:
        f.write("two ünïcode")
    assert target.read_text("utf-8") == "two ünïcode"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_a_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, suffix=".part") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_atomic_path_names_the_temp_file_after_the_target(tmp_path):
    target = tmp_path / "vocals.wav"
    with atomic_path(target, suffix=".tmp.npy") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".vocals.wav.") and tmp.name.endswith(".tmp.npy")
        assert not tmp.exists()
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"


def test_atomic_path_with_fsync_and_a_separate_temp_folder(tmp_path):
    scratch = tmp_path / ".tmp"
    scratch.mkdir()
    target = tmp_path / "u" / "a.mp3"
    with atomic_path(target, tmp_dir=scratch, fsync=True) as tmp:
        assert tmp.parent == scratch
        tmp.write_bytes(b"abc")
    assert target.read_bytes() == b"abc" and list(scratch.iterdir()) == []


def test_write_atomic_text_and_bytes(tmp_path):
    assert write_atomic(tmp_path / "a.txt", "héllo").read_text("utf-8") == "héllo"
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "c", "a"):
        pass


def test_a_block_that_writes_nothing_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "never"):
        pass
    assert list(tmp_path.iterdir()) == []


# --- hashing --------------------------------------------------------------------------------


def test_file_sha256_of_known_bytes(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(str(tmp_path / "abc")) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    big = bytes(range(256)) * 10_000  # more than one 1 MiB block
    (tmp_path / "big").write_bytes(big)
    assert file_sha256(tmp_path / "big") == hashlib.sha256(big).hexdigest()


# --- devices --------------------------------------------------------------------------------


def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "CUDA", "cuda:x", "mps", ""):
        with pytest.raises(BadInputError, match="Unknown device"):
            resolve_device(bad)
    if torch.cuda.is_available():
        assert resolve_device("cuda") == "cuda" and resolve_device("cuda:0") == "cuda:0"
        with pytest.raises(BadInputError, match="cuda:99"):
            resolve_device("cuda:99")
    else:
        for name in ("cuda", "cuda:0"):
            with pytest.raises(BadInputError, match="no CUDA GPU"):
                resolve_device(name)


def test_importing_utils_loads_no_torch_or_numpy():
    code = (
        "import sys, svc_core.utils\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# --- lazy registry --------------------------------------------------------------------------


class Counted:
    """A registry target for the tests below: counts its instances."""

    made = 0

    def __init__(self) -> None:
        type(self).made += 1


def test_registry_imports_on_first_use_and_builds_one_instance(monkeypatch):
    module = "tests.unit._lazy_target_for_test_utils"
    monkeypatch.delitem(sys.modules, module, raising=False)
    reg: LazyRegistry[type] = LazyRegistry(
        {"counted": f"{module}:Thing"}, unknown="unknown widget", aliases={"c": "counted"}
    )
    assert module not in sys.modules  # building the registry imports nothing
    assert list(reg) == ["counted"] and reg["counted"] == f"{module}:Thing" and len(reg) == 1
    assert "counted" in reg and "c" not in reg and reg.canonical("c") == "counted"
    assert reg.names() == ["counted", "c"]

    with pytest.raises(ModuleNotFoundError):
        reg.load("counted")  # the target module does not exist yet: the import error shows
    monkeypatch.setitem(sys.modules, module, type(sys)(module))
    sys.modules[module].Thing = Counted  # type: ignore[attr-defined]
    Counted.made = 0
    assert reg.load("counted") is Counted and reg.load("c") is Counted
    assert len(reg.instances) == 0
    first = reg.instance("counted")
    assert isinstance(first, Counted) and reg.instance("c") is first and Counted.made == 1
    assert dict(reg.instances) == {"counted": first}


def test_registry_names_unknown_entries():
    reg: LazyRegistry[type] = LazyRegistry(
        {"b": "json:JSONDecoder", "a": "json:JSONEncoder"}, unknown="unknown codec"
    )
    with pytest.raises(BadInputError, match=r"unknown codec 'zzz'; choose one of: a, b$"):
        reg.load("zzz")
    with pytest.raises(BadInputError, match="unknown codec 'zzz'"):
        reg.instance("zzz")
    assert reg.check("a") == "a"
    with pytest.raises(ValueError, match="module:attr"):
        LazyRegistry({"x": "no-colon"})
    with pytest.raises(ValueError, match="alias"):
        LazyRegistry({"x": "json:dumps"}, aliases={"y": "missing"})


# --- model cache ----------------------------------------------------------------------------


def test_cache_loads_once_per_key_and_clears():
    cache: ModelCache[str, object] = ModelCache()
    calls: list[str] = []

    def loader(key: str):
        def load() -> object:
            calls.append(key)
            return object()

        return load

    a = cache.get_or_load("a", loader("a"))
    assert cache.get_or_load("a", loader("a")) is a and calls == ["a"]
    b = cache.get_or_load("b", loader("b"))
    assert len(cache) == 2 and "a" in cache and cache["b"] is b and dict(cache) == {"a": a, "b": b}
    assert cache.discard(lambda k: k == "a") == 1 and list(cache) == ["b"]
    cache.clear()
    assert len(cache) == 0 and "b" not in cache
    assert cache.get_or_load("b", loader("b")) is not b and calls == ["a", "b", "b"]


def test_a_failed_load_stores_nothing():
    cache: ModelCache[str, int] = ModelCache()

    def fail() -> int:
        raise OSError("disk")

    with pytest.raises(OSError, match="disk"):
        cache.get_or_load("k", fail)
    assert len(cache) == 0
    assert cache.get_or_load("k", lambda: 7) == 7


def test_cache_max_size_drops_the_oldest_first():
    cache: ModelCache[int, int] = ModelCache(max_size=2)
    for i in range(3):
        cache.get_or_load(i, lambda i=i: i * 10)
    assert list(cache) == [1, 2]
    with pytest.raises(ValueError):
        ModelCache(max_size=0)


def test_concurrent_threads_load_each_key_once_and_keys_load_in_parallel():
    cache: ModelCache[str, object] = ModelCache()
    counts: dict[str, int] = {}
    count_lock = threading.Lock()
    loading_now = 0
    most_at_once = 0
    start = threading.Barrier(16)

    def loader(key: str):
        def load() -> object:
            nonlocal loading_now, most_at_once
            with count_lock:
                counts[key] = counts.get(key, 0) + 1
                loading_now += 1
                most_at_once = max(most_at_once, loading_now)
            time.sleep(0.2)  # a slow model load
            with count_lock:
                loading_now -= 1
            return object()

        return load

    results: list[tuple[str, object]] = []

    def worker(i: int) -> None:
        key = "ab"[i % 2]
        start.wait()
        value = cache.get_or_load(key, loader(key))
        with count_lock:
            results.append((key, value))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert counts == {"a": 1, "b": 1}
    assert len(results) == 16 and len({id(v) for _, v in results}) == 2
    assert all(v is cache[k] for k, v in results)
    assert most_at_once == 2  # "a" and "b" loaded at the same time, not one after the other


def test_eta_comes_from_the_measured_rate_after_the_set_up():
    from svc_core.progress import RateEta

    now = [0.0]
    eta = RateEta(clock=lambda: now[0])
    assert eta.update(0.0) is None  # the start: set-up follows
    now[0] = 30.0  # 30 s of loading models, then the work moves at 1 % a second
    assert eta.update(0.05) is None  # the first report above 0 starts the clock
    now[0] = 31.0
    assert eta.update(0.06) is None  # under 2 s measured: no guess
    now[0] = 40.0
    assert eta.update(0.15) == pytest.approx(85.0)  # 10 % in 10 s: 85 % takes 85 s
    # the old formula, elapsed * (1 - f) / f, would have said 227 s here
    now[0] = 41.0
    assert eta.update(1.0) == 0.0
    # a new attempt that starts below where the clock started measures afresh
    assert eta.update(0.02) is None
    now[0] = 44.0
    assert eta.update(0.08) == pytest.approx(3.0 * 0.92 / 0.06)
