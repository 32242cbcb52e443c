"""API latency under concurrency: 200 concurrent GET /api/v1/jobs/{id}, alone and while 20
uploads are in the middle of their bodies, on SQLite and (when reachable) PostgreSQL.

    .venv/bin/python bench/api_load.py [--rounds 3]

Prints p50/p99 per scenario; the results are recorded in bench/api_load.md. The API runs
under uvicorn as `svc-studio api` does (one process); no worker is needed (the job stays
queued).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.common.audio_files import song  # noqa: E402
from tests.common.services import fresh_pg_database, sqlite_url  # noqa: E402
from tests.common.stack import Stack, stack_env  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _gets(url: str, headers: dict, n: int) -> tuple[list[float], list[int]]:
    def one(_i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = httpx.get(url, headers=headers, timeout=120)
        return time.perf_counter() - t0, r.status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        out = list(pool.map(one, range(n)))
    return [t for t, _ in out], [s for _, s in out]


def _slow_upload(url: str, headers: dict, data: bytes, release: threading.Event) -> int:
    boundary = "benchboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="s.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def body():
        yield head + data[: len(data) // 2]
        release.wait(timeout=120)
        yield data[len(data) // 2 :] + f"\r\n--{boundary}--\r\n".encode()

    r = httpx.post(
        url,
        content=body(),
        headers={**headers, "content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=180,
    )
    return r.status_code


def run(db_url: str, name: str, rounds: int, work: Path) -> None:
    data = work / name
    data.mkdir()
    (data / "logs").mkdir()
    s = Stack(env=stack_env(data, db_url, "filesystem://"), data_dir=data, log_dir=data / "logs")
    try:
        s.create_user("bench")
        s.start_api()
        headers = {"Authorization": f"Bearer {s.tokens['bench']}"}
        with s.client("bench") as c:
            voice = c.post("/api/v1/voices", json={"name": "bench"}).json()
            wav = song(work / f"{name}.wav", 6.0).read_bytes()
            up = c.post(
                f"/api/v1/voices/{voice['id']}/tracks",
                files=[("files", ("s.wav", wav, "audio/wav"))],
            ).json()
        job_url = f"{s.url}/api/v1/jobs/{up['job']['id']}"
        upload_url = f"{s.url}/api/v1/voices/{voice['id']}/tracks"
        _gets(job_url, headers, 50)  # warm up
        with httpx.Client(headers=headers) as one:  # the cost of one request, for scale
            seq = []
            for _ in range(100):
                t0 = time.perf_counter()
                one.get(job_url)
                seq.append(time.perf_counter() - t0)
        print(
            f"{name:10s} {'1 GET at a time (keep-alive)':36s} p50 {_pct(seq, 0.5) * 1000:7.1f} ms"
            f"   p99 {_pct(seq, 0.99) * 1000:7.1f} ms"
        )
        for scenario in ("200 GETs", "200 GETs + 20 uploads in progress"):
            p50s, p99s, errors = [], [], 0
            for _ in range(rounds):
                release = threading.Event()
                threads = []
                if "uploads" in scenario:
                    threads = [
                        threading.Thread(
                            target=_slow_upload, args=(upload_url, headers, wav, release)
                        )
                        for _ in range(20)
                    ]
                    for t in threads:
                        t.start()
                    time.sleep(2)
                times, codes = _gets(job_url, headers, 200)
                release.set()
                for t in threads:
                    t.join()
                p50s.append(_pct(times, 0.5) * 1000)
                p99s.append(_pct(times, 0.99) * 1000)
                errors += sum(c >= 500 for c in codes)
            print(
                f"{name:10s} {scenario:36s} p50 {statistics.median(p50s):7.1f} ms   "
                f"p99 {statistics.median(p99s):7.1f} ms   5xx {errors}"
            )
    finally:
        s.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with TemporaryDirectory() as tmp, ExitStack() as es:
        work = Path(tmp)
        run(sqlite_url(work / "bench.db"), "sqlite", args.rounds, work)
        try:
            pg = es.enter_context(fresh_pg_database())
        except BaseException as exc:  # noqa: BLE001 - pytest.skip inside: no PostgreSQL here
            print(f"postgresql: skipped ({exc})")
            return
        from app.cli import upgrade_db

        upgrade_db(pg)
        run(pg, "postgresql", args.rounds, work)


if __name__ == "__main__":
    main()
