"""What every ``haniwa`` command shares: settings, output, error conversion and the way to the server.

The command modules import this one and never each other, so that each capability can change alone.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import IO, Any

import botocore.session
import click
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.text import Text

from haniwa.config import Settings
from haniwa.errors import PlatformError, UsageError
from haniwa.plugins import make_plugin_manager
from haniwa.runtime.registry import ModelRegistry

__all__ = [
    "OMP_FROM_ENV",
    "Failure",
    "Group",
    "bedrock_client",
    "bedrock_server",
    "client_failure",
    "err_console",
    "load_settings",
    "local_url",
    "make_registry",
    "out_console",
    "print_json",
    "say",
]

# ctx.meta key: the root group records it before defaulting OMP_WAIT_POLICY, for `haniwa doctor`
OMP_FROM_ENV = "haniwa.omp_wait_policy_from_env"


# -- errors -------------------------------------------------------------------------------------------
class Failure(click.ClickException):
    """A haniwa error on its way out: one red line on stderr, then ``exit_code`` (1; 2 for
    :class:`ConfigFailure`). Subclasses, not an instance attribute: click 8.5 types ``exit_code`` as a
    class variable."""

    def show(self, file: IO[Any] | None = None) -> None:
        console = Console(file=file, stderr=file is None, highlight=False)
        console.print(Text(f"error: {self.message}", style="bold red"), soft_wrap=True)


class ConfigFailure(Failure):
    """Bad configuration (a :class:`~haniwa.errors.UsageError`): exit status 2."""

    exit_code = 2


class Group(click.Group):
    """Turns haniwa's own errors into :class:`Failure` for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlatformError as exc:
            raise Failure(exc.message) from exc
        except UsageError as exc:
            raise ConfigFailure(str(exc)) from exc


def client_failure(exc: ClientError) -> click.ClickException:
    """A Bedrock error answered to a botocore client, as the one line the CLI prints."""
    err = exc.response.get("Error", {})
    return click.ClickException(f"{err.get('Code')}: {err.get('Message')}")


# -- output -------------------------------------------------------------------------------------------
def out_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped tables: rich's 80-column default would fold every id
    return console


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def say(console: Console, text: str, style: str = "") -> None:
    console.print(Text(text, style=style), soft_wrap=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# -- settings and models ------------------------------------------------------------------------------
def load_settings(**overrides: Any) -> Settings:
    """``Settings()`` with the flags that were given; a bad value is a UsageError naming the variable."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        name = "_".join(str(p) for p in err["loc"]).upper()
        raise UsageError(f"bad setting HANIWA_{name}: {err['msg']}") from exc


def make_registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.from_plugins(settings, make_plugin_manager(settings.load_plugins))


# -- the server -------------------------------------------------------------------------------------
def local_url(settings: Settings) -> str:
    host = settings.host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@contextlib.contextmanager
def bedrock_server(settings: Settings) -> Iterator[str]:
    """The URL of the server on ``HANIWA_HOST``/``HANIWA_PORT``, or of an embedded one for the command.

    Going through a server (never opening the stores in-process beside it) keeps one writer per store.
    """
    url = local_url(settings)
    try:
        if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
            yield url
            return
    except httpx.HTTPError:
        pass
    from haniwa.api.app import create_app
    from haniwa.testing.server import serve_in_thread

    with serve_in_thread(create_app(settings)) as embedded:
        yield embedded


def bedrock_client(service: str, url: str, settings: Settings) -> Any:
    """A botocore client for ``service`` at ``url``: exactly what a boto3 user sends."""
    secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else "haniwa"
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=url,
        region_name=settings.region,
        aws_access_key_id=settings.access_key_id or "haniwa",
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, read_timeout=600),
    )
