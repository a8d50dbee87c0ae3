"""The functions agents may run: registered Python callables and HTTP endpoints, by name.

Bedrock runs action groups in Lambda; haniwa runs them here. An action group names its function with a
Lambda ARN (``arn:aws:lambda:REGION:ACCOUNT:function:NAME``, or just ``NAME``) and NAME must have been
registered by configuration (``HANIWA_AGENT_FUNCTIONS``) or by a plugin (``register_agent_functions``).
Nothing named in a request is ever imported: an unknown NAME is refused at PrepareAgent.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pluggy

from haniwa.agents.base import ActionExecutor, ActionInvocation, AgentFunction, Tool
from haniwa.config import Settings
from haniwa.errors import UsageError
from haniwa.runtime.offload import Worker

__all__ = [
    "FunctionRegistry",
    "ActionError",
    "function_name",
    "lambda_event",
    "response_text",
    "wire_parameters",
]


_FUNCTION_THREADS = 8


class ActionError(Exception):
    """An action failed (it raised, timed out, or answered with an error). The orchestration loop shows
    the message to the model as an observation; it never reaches the client as an error."""


def function_name(lambda_arn: str) -> str:
    """``arn:aws:lambda:us-east-1:123456789012:function:NAME[:QUALIFIER]`` (or ``NAME``) → ``NAME``."""
    parts = lambda_arn.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[5] == "function":
        return parts[6]
    return lambda_arn


def lambda_event(call: ActionInvocation) -> dict[str, Any]:
    """Bedrock's Lambda input event for this call (function or API form)."""
    tool, agent = call.tool, call.agent
    event: dict[str, Any] = {
        "messageVersion": "1.0",
        "agent": {
            "name": agent.name,
            "id": agent.agent_id,
            "alias": agent.alias_id,
            "version": agent.version,
        },
        "inputText": call.input_text,
        "sessionId": call.session_id,
        "actionGroup": tool.action_group,
        "sessionAttributes": dict(call.session_attributes),
        "promptSessionAttributes": dict(call.prompt_session_attributes),
    }
    if tool.function is not None:
        event["function"] = tool.function
        event["parameters"] = wire_parameters(tool, call.arguments)
    else:
        event["apiPath"] = tool.api_path
        event["httpMethod"] = tool.http_method
        event["parameters"] = wire_parameters(tool, call.arguments, body=False)
        body = wire_parameters(tool, call.arguments, body=True)
        if body:
            event["requestBody"] = {"content": {"application/json": {"properties": body}}}
    return event


def wire_parameters(tool: Tool, args: Mapping[str, Any], body: bool | None = None) -> list[dict[str, str]]:
    """Arguments as Bedrock's ``[{name, type, value}]`` (values as strings), as Lambda events, traces and
    return-of-control payloads carry them. ``body``: only request-body (True) or other (False) ones."""
    return [
        {
            "name": p.name,
            "type": p.type,
            "value": v if isinstance(v, str) else json.dumps(v, ensure_ascii=False),
        }
        for p in tool.parameters
        if p.name in args and (body is None or (p.location == "body") == body)
        for v in (args[p.name],)
    ]


def response_text(resp: Any, call: ActionInvocation) -> str:
    """A Lambda-style response (function or API form) → the text the model observes; also applies the
    ``sessionAttributes``/``promptSessionAttributes`` it returns. Anything else is shown as JSON."""
    if isinstance(resp, Mapping) and isinstance(resp.get("response"), Mapping):
        for key, target in (
            ("sessionAttributes", call.session_attributes),
            ("promptSessionAttributes", call.prompt_session_attributes),
        ):
            if isinstance(resp.get(key), Mapping):
                target.clear()
                target.update({str(k): str(v) for k, v in resp[key].items()})
        r = resp["response"]
        if "functionResponse" in r:
            fr = r["functionResponse"]
            if fr.get("responseState") == "FAILURE":
                raise ActionError(_body_text(fr.get("responseBody")) or "the function reported FAILURE")
            return _body_text(fr.get("responseBody"))
        status = int(r.get("httpStatusCode", 200))
        text = _body_text(r.get("responseBody"))
        if status >= 400:
            raise ActionError(f"HTTP {status}: {text}")
        return text
    return _plain(resp)


def _body_text(body: Any) -> str:
    if not isinstance(body, Mapping):
        return "" if body is None else _plain(body)
    for part in body.values():  # {"TEXT": {"body": ...}} or {"application/json": {"body": ...}}
        if isinstance(part, Mapping) and "body" in part:
            return _plain(part["body"])
    return _plain(body)


def _plain(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)


class _PythonExecutor:
    """Runs a registered Python function: a coroutine function on the event loop, any other on the
    registry's own threads, both within ``timeout`` seconds."""

    def __init__(self, fn: AgentFunction, timeout: float, threads: Worker) -> None:
        self.fn = fn
        self.timeout = timeout
        self.threads = threads

    async def __call__(self, call: ActionInvocation) -> str:
        args: tuple[Any, ...] = ()
        if self.fn.style == "lambda":
            wants_context = len(inspect.signature(self.fn.fn).parameters) >= 2
            args = (lambda_event(call), None) if wants_context else (lambda_event(call),)
        kwargs = dict(call.arguments) if self.fn.style == "kwargs" else {}
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                if inspect.iscoroutinefunction(self.fn.fn):
                    out = await self.fn.fn(*args, **kwargs)
                else:
                    # it may block (I/O, a database): off the event loop. A function that overruns keeps
                    # its thread until it returns (Python cannot stop a thread); the call fails at once.
                    out = await self.threads.run(self.fn.fn, *args, **kwargs)
        except TimeoutError as e:
            if not deadline.expired():
                raise  # the function's own TimeoutError: an ordinary failure
            raise ActionError(
                f"{call.tool.name} did not finish within {self.timeout:g} s (HANIWA_AGENT_FUNCTION_TIMEOUT)"
            ) from e
        return response_text(out, call) if self.fn.style == "lambda" else _plain(out)


class _HttpExecutor:
    """POSTs Bedrock's Lambda event as JSON; the reply is a Lambda-style response or any JSON/text."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout

    async def __call__(self, call: ActionInvocation) -> str:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(self.url, json=lambda_event(call))
        except httpx.TimeoutException as e:
            raise ActionError(f"{call.tool.name} timed out after {self.timeout:g} s") from e
        except httpx.HTTPError as e:
            raise ActionError(f"{call.tool.name} could not be reached: {e}") from e
        if r.status_code >= 400:
            raise ActionError(f"{call.tool.name} answered HTTP {r.status_code}: {r.text[:500]}")
        try:
            body = r.json()
        except ValueError:
            return r.text
        return response_text(body, call)


class FunctionRegistry:
    """Name → executor. Built once at startup from plugins and configuration."""

    def __init__(self, timeout: float = 10.0, function_timeout: float = 30.0) -> None:
        self.timeout = timeout  # HTTP endpoints
        self.function_timeout = function_timeout  # Python functions
        self._executors: dict[str, ActionExecutor] = {}
        # Python functions run on threads of their own: ones that hang (and keep their thread past the
        # timeout) cannot starve the threads the rest of the server uses, and at most this many run at once
        self._threads = Worker("haniwa-agent-fn", threads=_FUNCTION_THREADS)

    def register(self, fn: AgentFunction) -> None:
        self._executors[fn.name] = _PythonExecutor(fn, self.function_timeout, self._threads)

    def register_url(self, name: str, url: str) -> None:
        self._executors[name] = _HttpExecutor(url, self.timeout)

    def __contains__(self, name: object) -> bool:
        return name in self._executors

    def names(self) -> list[str]:
        return sorted(self._executors)

    def executor(self, name: str) -> ActionExecutor:
        try:
            return self._executors[name]
        except KeyError:
            raise ActionError(f"no function named {name!r} is registered") from None

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager, settings: Settings) -> FunctionRegistry:
        reg = cls(settings.agent_http_timeout, settings.agent_function_timeout)
        pm.hook.register_agent_functions(register=reg.register)
        for name, target in settings.agent_functions.items():
            if target.startswith(("http://", "https://")):
                reg.register_url(name, target)
                continue
            module, _, attr = target.partition(":")
            if not attr:
                raise UsageError(f"agent function {name!r}: expected 'module:attr' or a URL, got {target!r}")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as e:
                raise UsageError(f"agent function {name!r}: cannot load {target!r}: {e}") from e
            if isinstance(fn, AgentFunction):
                reg.register(AgentFunction(name, fn.fn, fn.style))
            else:
                reg.register(AgentFunction(name, fn, "lambda" if _is_lambda_handler(fn) else "kwargs"))
        return reg


def _is_lambda_handler(fn: Any) -> bool:
    """``def handler(event, context)`` (or just ``event``): a Lambda handler, run with Bedrock's event."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return bool(names) and names[0] == "event" and len(names) <= 2
