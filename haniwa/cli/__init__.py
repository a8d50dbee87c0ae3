"""The ``haniwa`` command line: a thin sync edge over the async core.

Each command builds :class:`~haniwa.config.Settings` (flags override ``HANIWA_*`` variables), runs its
async work with ``asyncio.run`` (the chat REPL keeps one loop across turns with ``asyncio.Runner``) and
renders with rich. A :class:`~haniwa.errors.PlatformError` prints one red line and exits 1; a
:class:`~haniwa.errors.UsageError` (bad configuration, unsafe bind) prints one red line and exits 2.

One module per capability (``serve``, ``models``, ``chat``, ``doctor``, ``kb``, ``agent``, ``batch``,
``evaluation``, ``customize``, ``guardrail``), each importing only ``_common``; this module assembles
them under the root group.
"""

from __future__ import annotations

import os
import sys

import click

import haniwa
from haniwa.cli import agent, batch, chat, customize, doctor, evaluation, guardrail, kb, models, serve
from haniwa.cli._common import OMP_FROM_ENV, Group

__all__ = ["cli", "main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(haniwa.__version__, prog_name="haniwa")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """haniwa: a self-hosted Amazon Bedrock over local models."""
    ctx.meta[OMP_FROM_ENV] = "OMP_WAIT_POLICY" in os.environ
    # llama.cpp/OpenMP collapse 10-20x on a busy machine when idle threads spin (see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The modules keep their names (haniwa.cli.kb is the module, not its group), so each is added by attribute.
for _command in (
    serve.serve,
    models.models,
    chat.invoke,
    chat.chat,
    doctor.doctor,
    kb.kb,
    agent.agent,
    evaluation.evaluation,
    batch.batch,
    customize.customize,
    guardrail.guardrail,
):
    cli.add_command(_command)


def _utf8_streams() -> None:
    # A legacy code page (a redirected Windows stream) cannot encode Japanese; write UTF-8 instead.
    for stream in (sys.stdout, sys.stderr):
        try:
            "日本語".encode(stream.encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``haniwa = haniwa.cli:main``)."""
    _utf8_streams()
    cli.main(args=argv, prog_name="haniwa")
