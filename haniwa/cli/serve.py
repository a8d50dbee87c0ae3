"""``haniwa serve``: the Bedrock and OpenAI APIs and the playground, in the foreground."""

from __future__ import annotations

import click

import haniwa
from haniwa.cli._common import load_settings, local_url, out_console, say

__all__ = ["serve"]


@click.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; others need credentials).")
@click.option("--port", type=int, help="Port to bind (default 8765).")
@click.option("--profile", type=click.Choice(["default", "fast"]), help="Embedded chat model size.")
@click.option("--log-level", default="info", show_default=True, help="uvicorn log level.")
def serve(host: str | None, port: int | None, profile: str | None, log_level: str) -> None:
    """Serve the Bedrock and OpenAI APIs, and the playground at /."""
    from haniwa.api.app import create_app
    from haniwa.api.serve import run_server

    settings = load_settings(host=host, port=port, profile=profile)
    settings.check_bind()
    app = create_app(settings)
    url = local_url(settings)
    out = out_console()
    if settings.auth_enabled:
        keys = ", API keys for /v1" if settings.api_keys else "; /v1 closed: no HANIWA_API_KEYS"
        auth = "SigV4 required" + keys
    elif settings.api_keys:
        auth = "API keys required (bearer)"
    else:
        auth = "no auth (loopback only)"
    where = f"bind {settings.host}, profile {settings.profile}, {auth}"
    say(out, f"haniwa {haniwa.__version__} on {url} ({where})", "bold")
    snippet = f'boto3.client("bedrock-runtime", endpoint_url="{url}", region_name="{settings.region}")'
    say(out, f"  {snippet}", "dim")
    say(out, f"  playground: {url}/", "dim")
    run_server(app, settings.host.strip("[]"), settings.port, log_level)
