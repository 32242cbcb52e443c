"""Model download stage: pull registry models (svc_core.assets) into the workers' models
folder, from their publishers or SVC_MODELS_MIRROR, each checked against its published hash
(a file that does not match is not installed). Progress follows the bytes received; a cancel
stops the download between chunks and keeps nothing half-written. Files already installed
and matching are not downloaded again."""

from __future__ import annotations

from app.core.params import ModelDownloadParams
from svc_core.progress import check_stop
from worker.jobs.common import snapshot
from worker.jobs.runtime import JobHandle, Runtime


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.assets import get_asset, pull

    job = snapshot(rt, h)
    p: ModelDownloadParams = job.params
    assets = [get_asset(n) for n in p.names]  # an unknown name fails the job in plain words
    n = len(assets)
    for i, asset in enumerate(assets):
        check_stop(h.should_stop)
        h.progress("fetch_models", i / n, f"download: {asset.name} ({i + 1} of {n})", force=True)

        def progress(_stage: str, fraction: float, i: int = i, name: str = asset.name) -> None:
            check_stop(h.should_stop)  # raises Cancelled between chunks
            h.progress(
                "fetch_models",
                (i + fraction) / n,
                f"download: {name} ({i + 1} of {n}), {round(fraction * 100)} %",
            )

        pull(asset.name, rt.settings.models_dir, progress, mirror=rt.settings.models_mirror or None)
    h.progress(
        "fetch_models", 1.0, f"download: {n} model{'s' if n > 1 else ''} installed", force=True
    )
