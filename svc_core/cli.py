"""The engine's command line: ``svc-studio <command>`` on local files.

Commands are loaded lazily (``name -> "module:attribute"``) so that ``svc-studio --help``
and the web process never import torch. Each command lives in ``svc_core/commands/`` and
calls the same library functions the workers call.
"""

from __future__ import annotations

import importlib

import click

# name -> (module:attribute, one-line help shown before the module is imported)
ENGINE_COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("svc_core.commands.ingest:ingest_cmd", "Decode an audio file to a 44.1 kHz WAV."),
    "assets": (
        "svc_core.commands.assets:assets",
        "List, pull, import and verify pretrained assets.",
    ),
    "separate": (
        "svc_core.commands.separate:separate_cmd",
        "Split a song into vocals/instrumental.",
    ),
    "slice": ("svc_core.commands.slice:slice_cmd", "Slice vocals at silences (Audio Slicer)."),
    "f0": ("svc_core.commands.f0:f0_cmd", "Extract the F0 curve of a vocal file."),
    "content": ("svc_core.commands.content:content_cmd", "Extract content features (PPG/vec)."),
    "speaker": ("svc_core.commands.speaker:speaker_cmd", "A singer's .spk.npy (GE2E or 5.0's)."),
    "preprocess": ("svc_core.commands.preprocess:preprocess_cmd", "Build a voice's dataset."),
    "train": ("svc_core.commands.train:train_cmd", "Train a voice model."),
    "index": ("svc_core.commands.index:index_cmd", "A voice's feature-retrieval index."),
    "convert": ("svc_core.commands.convert:convert_cmd", "Convert vocals into a voice."),
    "mix": ("svc_core.commands.mix:mix_cmd", "Mix converted vocals over an instrumental."),
    "pipeline": ("svc_core.commands.pipeline:pipeline_cmd", "Songs in, mixed cover out."),
    "package": ("svc_core.commands.package:package_cmd", "Export or inspect a voice package."),
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target, help_text = self.lazy[cmd_name]
            module_name, attr = target.split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return _not_available(cmd_name, help_text)
            return getattr(module, attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Show the static help text instead of importing every command module.
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _not_available(name: str, help_text: str) -> click.Command:
    @click.command(
        name=name,
        help=f"{help_text} (not available yet)",
        context_settings={"ignore_unknown_options": True},
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def _cmd(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"'{name}' is not available yet in this version of svc-studio.")

    return _cmd


@click.group(cls=LazyGroup, lazy=ENGINE_COMMANDS)
def engine() -> None:
    """svc-studio engine commands on local files."""


def main() -> None:
    engine()
