"""Exceptions raised by the engine. Messages are meant for end users: plain and specific."""

from __future__ import annotations


class SvcError(Exception):
    """Base class of all engine errors."""


class BadInputError(SvcError):
    """The user's input cannot be processed (not audio, silent, too long, ...). Never retried."""


class BadAudioError(BadInputError):
    """An audio file or array is unusable."""


class AssetMissingError(SvcError):
    """A pretrained asset is not in the models folder. The message names the command to fetch it."""


class AssetHashError(SvcError):
    """A pretrained asset's file does not match the registry's sha256."""


class IncompatibleError(SvcError):
    """A saved artifact (checkpoint, voice package, feature file) has an unknown format/config."""


class StageNotAvailableError(SvcError):
    """A pipeline stage that is not built yet. The job fails with this message."""


class Cancelled(Exception):
    """Raised inside long work when ``should_stop()`` returned True.

    Not an :class:`SvcError`: a cancel is not a failure, so the ``except SvcError`` of the
    commands and of the worker's failure handling never swallow it; whoever asked for the
    stop catches it by name (the worker's runner, ``svc-studio train``)."""
