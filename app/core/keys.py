"""Storage keys: every stored file's key is built here, so the layout is written once.

    u/<user>/tracks/<track>/…         an upload (original, decoded, stems, slices)
    u/<user>/voices/<voice>/…         a voice (imports, dataset, package, speaker vectors,
                                      retrieval index, previews)
    u/<user>/conversions/<conv>/…     a conversion (converted vocals, mixes, partial work)

Deleting a resource deletes its prefix (the key with no parts)."""

from __future__ import annotations


def _key(user_id: str, kind: str, resource_id: str, parts: tuple[str, ...]) -> str:
    for p in (user_id, resource_id, *parts):
        if not p or p.startswith("/") or ".." in p.split("/"):
            raise ValueError(f"not a storage key part: {p!r}")
    return "/".join(("u", user_id, kind, resource_id, *parts))


def track(user_id: str, track_id: str, *parts: str) -> str:
    return _key(user_id, "tracks", track_id, parts)


def voice(user_id: str, voice_id: str, *parts: str) -> str:
    return _key(user_id, "voices", voice_id, parts)


def conversion(user_id: str, conversion_id: str, *parts: str) -> str:
    return _key(user_id, "conversions", conversion_id, parts)
