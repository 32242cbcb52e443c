"""How good is a conversion? Numbers and plain-language verdicts.

- Speaker similarity (GE2E / Resemblyzer cosine) of the converted vocals to the target
  voice's centroid and to the source singer (the original vocals). Converted vocals that are
  closer to the source singer than to the target are the classic so-vits complaint "it
  sounds like the source singer" (timbre leakage). Published reference points on singing
  conversion: RVC v2 0.726, zero-shot Seed-VC 0.741 (Seed-VC's evaluation).
- Pitch accuracy of the converted vocals against the (transposed) source melody: share of
  frames within 50 cents, octave errors, voicing recall (choked or missing notes).
- The song's fit to the voice's range (coverage) and the mix's loudness and peak, when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from svc_core.audio.dsp import loudness_lufs, peak_dbfs, to_mono
from svc_core.errors import BadAudioError
from svc_core.f0.base import F0Params, extract_f0
from svc_core.f0.pitch import f0_accuracy
from svc_core.progress import ProgressFn, StopFn, check_stop
from svc_core.speaker import SpeakerParams, cosine, speaker_embedding

# Verdict thresholds (Resemblyzer cosine): the published systems above sit at 0.73-0.74.
SIM_GOOD = 0.75
SIM_FAIR = 0.65
PITCH_GOOD = 0.90
PITCH_FAIR = 0.70


@dataclass(frozen=True)
class QualityReport:
    similarity_to_target: float | None
    similarity_to_source: float | None
    pitch: dict | None  # F0Accuracy.to_dict()
    transpose_semitones: float
    loudness_lufs: float
    peak_dbfs: float
    verdicts: list[str] = field(default_factory=list)
    has_target_reference: bool = True  # False: no GE2E centroid of the target to compare with

    def to_dict(self) -> dict:
        def r(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 4)

        return {
            "similarity_to_target": r(self.similarity_to_target),
            "similarity_to_source": r(self.similarity_to_source),
            "pitch": None
            if self.pitch is None
            else {k: r(v) if isinstance(v, float) else v for k, v in self.pitch.items()},
            "transpose_semitones": self.transpose_semitones,
            "loudness_lufs": r(self.loudness_lufs),
            "peak_dbfs": r(self.peak_dbfs),
            "verdicts": list(self.verdicts),
            "has_target_reference": self.has_target_reference,
        }


def _embedding(audio: np.ndarray, sr: int, params: SpeakerParams) -> np.ndarray | None:
    try:
        return speaker_embedding(audio, sr, params)
    except BadAudioError:
        return None


def quality_report(
    converted: np.ndarray,
    converted_sr: int,
    source_vocals: np.ndarray,
    source_sr: int,
    target_embedding: np.ndarray | None,
    *,
    transpose_semitones: float = 0.0,
    f0: F0Params | None = None,
    speaker: SpeakerParams | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> QualityReport:
    """Compare converted vocals with the target voice and the source performance.

    Args:
        converted: ``[T]`` or ``[C, T]`` converted vocals.
        source_vocals: the source song's original vocals (``[T]`` or ``[C, T]``).
        target_embedding: the voice's GE2E centroid ``[256]``; None where the voice has none
            (a so-vits-svc 5.0 voice imported without reference audio): the similarity to
            the target is then not measured.
        transpose_semitones: the shift applied in conversion; the melody is compared after it.
        f0: how to extract F0 from both (the voice's method).
        progress: ``progress("report", fraction)``: the embeddings, then each song's pitch.
        should_stop: checked between the steps (and the pitch pieces); raises Cancelled.
    """
    report_ = progress or (lambda _s, _f: None)
    f0 = f0 or F0Params()
    speaker = speaker or SpeakerParams()
    conv = to_mono(np.asarray(converted, np.float32))
    src = to_mono(np.asarray(source_vocals, np.float32))
    # GE2E (Resemblyzer) is the judge whatever encoder the voice was trained with
    speaker = replace(speaker, encoder="ge2e", encoder_model=None)
    conv_emb = _embedding(conv, converted_sr, speaker)
    src_emb = _embedding(src, source_sr, speaker) if conv_emb is not None else None
    sim_target = sim_source = None
    if conv_emb is not None and target_embedding is not None:
        sim_target = cosine(conv_emb, target_embedding)
    if conv_emb is not None and src_emb is not None:
        sim_source = cosine(conv_emb, src_emb)
    pitch = None
    check_stop(should_stop)
    report_("report", 0.3)
    f_conv = extract_f0(
        conv,
        converted_sr,
        f0,
        progress=lambda f: report_("report", 0.3 + 0.35 * f),
        should_stop=should_stop,
    )
    f_src = extract_f0(
        src,
        source_sr,
        f0,
        progress=lambda f: report_("report", 0.65 + 0.35 * f),
        should_stop=should_stop,
    ) * np.float32(2.0 ** (transpose_semitones / 12.0))
    if (f_src > 0).any():
        pitch = f0_accuracy(f_conv, f_src).to_dict()
    report = QualityReport(
        similarity_to_target=sim_target,
        similarity_to_source=sim_source,
        pitch=pitch,
        transpose_semitones=float(transpose_semitones),
        loudness_lufs=loudness_lufs(conv, converted_sr),
        peak_dbfs=peak_dbfs(conv),
        has_target_reference=target_embedding is not None,
    )
    return QualityReport(**{**report.__dict__, "verdicts": verdicts(report)})


def verdicts(q: QualityReport) -> list[str]:
    """Plain-language reading of the numbers, most important first."""
    out: list[str] = []
    st, ss = q.similarity_to_target, q.similarity_to_source
    if not q.has_target_reference:
        out.append(
            "No recording of the target voice to compare with (a voice imported without its "
            "training audio): similarity to the target not measured."
        )
        if ss is not None:
            out.append(f"Similarity to the source singer: {ss:.2f}.")
    elif st is None:
        out.append("Too little voice in the result to judge whose voice it is.")
    else:
        if st >= SIM_GOOD:
            out.append(
                f"Sounds like the target voice (similarity {st:.2f}; published systems "
                "reach 0.73-0.74)."
            )
        elif st >= SIM_FAIR:
            out.append(
                f"Partly like the target voice (similarity {st:.2f}); more or cleaner "
                "training data, or longer training, usually helps."
            )
        else:
            out.append(f"Does not sound like the target voice yet (similarity {st:.2f}).")
        if ss is not None and ss > st:
            out.append(
                f"It still sounds more like the source singer ({ss:.2f}) than like the "
                f"target ({st:.2f}): the model copies the source's timbre. Train "
                "longer or on more varied data."
            )
    p = q.pitch
    if p is None:
        out.append("No sung melody found in the source to compare the pitch with.")
    else:
        rpa = p["raw_pitch_accuracy"]
        if rpa >= PITCH_GOOD:
            out.append(f"Follows the melody ({100 * rpa:.0f} % of notes within 50 cents).")
        elif rpa >= PITCH_FAIR:
            out.append(f"Mostly follows the melody ({100 * rpa:.0f} % within 50 cents).")
        else:
            out.append(f"Pitch problems: only {100 * rpa:.0f} % of notes within 50 cents.")
        if p["octave_errors"] >= 0.05:
            out.append(
                f"Octave jumps in {100 * p['octave_errors']:.0f} % of the notes: the "
                "song is probably outside the voice's range; try transpose 'auto'."
            )
        if p["voicing_recall"] < 0.8:
            out.append(
                f"{100 * (1 - p['voicing_recall']):.0f} % of the sung notes came out "
                "unvoiced (choked or whispered); notes outside the voice's range or "
                "noisy training data cause this."
            )
    if q.peak_dbfs > -0.1:
        out.append("The converted vocals reach full scale; the mix limiter catches it.")
    return out
