"""Mix stage: converted vocals over the source's instrumental (also the whole re-mix job).

Inputs come from earlier stages' artifacts: ``converted_vocals`` of the conversion, and the
source track's ``instrumental`` and original ``vocals`` stems (a vocals-only source has no
instrumental: the mix is the converted vocals alone). A re-mix with other settings reuses
the converted vocals; a mix with the same inputs and settings is not redone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core import keys
from app.core.db.models import Conversion
from app.core.names import ArtifactKind, Stage
from app.core.params import ConversionOptions, RemixParams, RemixRequest
from svc_core.errors import BadInputError
from worker.jobs.common import (
    conversion_context,
    find_artifact,
    inputs_key,
    snapshot,
    store_artifact,
)
from worker.jobs.runtime import JobHandle, Runtime


def mix_params(options: ConversionOptions | RemixRequest, transpose_semitones: float):
    from svc_core.mix import MixParams

    return MixParams(
        vocal_gain_db=options.vocal_gain_db,
        reverb_wet=options.reverb,
        transpose_instrumental=transpose_semitones if options.transpose_instrumental else 0.0,
        output_format=options.output_format,
    )


def mix_filename(song: str, params: Any, ext: str) -> str:
    """``<song>-mix.<ext>``, with the settings that differ from the defaults in the name, so
    a re-mix downloads as another file: ``take-mix-vocals+2dB-reverb30.wav``."""
    parts = []
    if params.vocal_gain_db:
        parts.append(f"vocals{params.vocal_gain_db:+g}dB")
    if params.reverb_wet:
        parts.append(f"reverb{round(params.reverb_wet * 100)}")
    return "-".join([song, "mix", *parts]) + f".{ext}"


def run(rt: Runtime, h: JobHandle) -> None:
    from svc_core.mix import OUTPUT_FORMATS, mix_files

    job = snapshot(rt, h)
    ctx = conversion_context(rt, job)
    # a re-mix's settings win over the conversion's
    options = job.params.options if isinstance(job.params, RemixParams) else ctx.options
    report, track_id, conv_id, song = ctx.report, ctx.track_id, ctx.id, Path(ctx.song).stem
    vocals = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.converted_vocals, conversion_id=conv_id
    )
    if vocals is None:
        raise BadInputError("There are no converted vocals to mix: run the conversion first.")
    inst = find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.instrumental, track_id=track_id)
    original = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.vocals, track_id=track_id
    ) or find_artifact(rt, user_id=job.user_id, kind=ArtifactKind.decoded, track_id=track_id)
    semitones = float((report.get("transpose") or {}).get("semitones", 0.0))
    params = mix_params(options, semitones)
    key = inputs_key(
        "mix",
        vocals.sha256,
        inst.sha256 if inst else None,
        original.sha256 if original else None,
        params,
    )
    existing = find_artifact(
        rt, user_id=job.user_id, kind=ArtifactKind.mix, conversion_id=conv_id, inputs=key
    )
    if existing is not None:
        h.progress("mix", 1.0, "mix: the same mix exists already", force=True)
        return
    ext = OUTPUT_FORMATS[params.output_format][2]
    tmp = rt.storage.temp_path(f".{ext}")
    h.progress("mix", 0.0, "mix: mixing vocals and instrumental", force=True)
    try:
        result = mix_files(
            rt.storage.path(vocals.storage_key),
            rt.storage.path(inst.storage_key) if inst else None,
            tmp,
            params,
            reference_vocals=rt.storage.path(original.storage_key) if original else None,
            progress=lambda _s, f: h.progress("mix", 0.95 * f),
            should_stop=h.should_stop,
        )
    except BaseException:  # cancelled or failed: no half-written output stays behind
        tmp.unlink(missing_ok=True)
        raise
    store_artifact(
        rt,
        job=job,
        local_file=Path(tmp),
        key=keys.conversion(job.user_id, conv_id, f"mix-{key[:12]}.{ext}"),
        kind=ArtifactKind.mix,
        stage=Stage.mix,
        inputs=key,
        content_type=OUTPUT_FORMATS[params.output_format][3],
        filename=mix_filename(song, params, ext),
        meta={"settings": params.__dict__, **result.to_dict()},
        conversion_id=conv_id,
    )
    with rt.scope() as s:
        c = s.get(Conversion, conv_id)
        assert c is not None
        c.report = {**(c.report or {}), "mix": {"settings": params.__dict__, **result.to_dict()}}
