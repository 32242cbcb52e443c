"""Which separation models exist, what each is for, and which of its stems we keep.

A model is named by its asset registry name (``mdx-voc-ft``) or, for a model the registry does
not know, by its file name in ``models_dir`` (any model audio-separator can load from there).
audio-separator names stems after the model's data ("Vocals", "Instrumental", "No Reverb",
...); the catalogue says which stem becomes our ``vocals`` and what the rest is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    MAIN = "main"  # mixture -> vocals + instrumental
    SECOND_PASS = "second_pass"  # vocals -> cleaner vocals + a residual (reverb, backing vocals)


@dataclass(frozen=True)
class SeparationModel:
    """A separation model and how its stems map onto ours.

    Attributes:
        name: asset registry name.
        role: main separator or second pass over the vocals.
        keep: the stem (lower case, as audio-separator names it) that becomes ``vocals``.
        other: our name for everything else (``instrumental``, ``reverb``, ``backing_vocals``).
        note: one line for users.
    """

    name: str
    role: Role
    keep: str
    other: str
    note: str


CATALOGUE: dict[str, SeparationModel] = {
    m.name: m
    for m in (
        SeparationModel(
            "mdx-voc-ft",
            Role.MAIN,
            "vocals",
            "instrumental",
            "default: good vocals (SDR 10.2 dB), ~1.7x real time on a 2-core CPU",
        ),
        SeparationModel(
            "mdx-kim-vocal-2",
            Role.MAIN,
            "vocals",
            "instrumental",
            "same cost and quality class as mdx-voc-ft (SDR 10.2 dB)",
        ),
        SeparationModel(
            "mdx-inst-hq-3",
            Role.MAIN,
            "vocals",
            "instrumental",
            "instrumental-first model (vocals SDR 8.8 dB); cleaner accompaniment",
        ),
        SeparationModel(
            "bs-roformer-1297",
            Role.MAIN,
            "vocals",
            "instrumental",
            "best vocals (SDR 11.8 dB); needs a GPU to be practical",
        ),
        SeparationModel(
            "vr-deecho-dereverb",
            Role.SECOND_PASS,
            "no reverb",
            "reverb",
            "removes reverb and echo from the vocals",
        ),
        SeparationModel(
            "mdx-karaoke-2",
            Role.SECOND_PASS,
            "vocals",
            "backing_vocals",
            "splits lead vocals from backing vocals",
        ),
    )
}

DEFAULT_MODEL = "mdx-voc-ft"  # MDX-Net: the faster option, and the default on a CPU
QUALITY_MODEL = "bs-roformer-1297"  # ~12.9 dB vocals SDR vs ~10.2 for Voc_FT; wants a GPU
DEREVERB_MODEL = "vr-deecho-dereverb"
BACKING_VOCALS_MODEL = "mdx-karaoke-2"


def default_model(cuda: bool) -> str:
    """The separation model used when none is named: the Roformer (quality) on a GPU worker,
    MDX-Net Voc_FT on a CPU one (the Roformer is several times slower there)."""
    return QUALITY_MODEL if cuda else DEFAULT_MODEL


# For models outside the catalogue: stems that mean "the voice we want", in order of preference.
KEEP_CANDIDATES = ("vocals", "no reverb", "no echo", "dry", "no noise", "lead vocals")


def catalogue_entry(name: str) -> SeparationModel | None:
    """The catalogue entry for a registry name or a registered file name, else None."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    from svc_core.assets import REGISTRY

    for asset in REGISTRY.values():
        if asset.filename == name and asset.name in CATALOGUE:
            return CATALOGUE[asset.name]
    return None
