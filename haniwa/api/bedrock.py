"""The ``bedrock`` control plane: ListFoundationModels and GetFoundationModel."""

from __future__ import annotations

from typing import Any

from haniwa.api.context import Call
from haniwa.errors import NotFoundError
from haniwa.runtime.base import ModelInfo
from haniwa.runtime.registry import Alias, ModelRegistry, strip_arn

__all__ = ["OPERATIONS", "summaries"]

_PROVIDERS = {
    "anthropic": "Anthropic",
    "amazon": "Amazon",
    "cohere": "Cohere",
    "meta": "Meta",
    "mistral": "Mistral AI",
}


def _summary(model_id: str, info: ModelInfo, region: str, alias: Alias | None = None) -> dict[str, Any]:
    provider = _PROVIDERS.get(model_id.split(".", 1)[0], info.provider) if alias else info.provider
    name = alias.description if alias and alias.description else (info.name or info.id)
    if alias:
        name = f"{name} (served by {info.id})"
    return {
        "modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}",
        "modelId": model_id,
        "modelName": name,
        "providerName": provider,
        "inputModalities": list(info.input_modalities),
        "outputModalities": list(info.output_modalities),
        "responseStreamingSupported": info.streaming,
        "customizationsSupported": list(info.customizations),
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


def summaries(registry: ModelRegistry, region: str) -> list[dict[str, Any]]:
    """Every local model, then every exact alias (patterns cannot be listed)."""
    out = [_summary(i.id, i, region) for i in registry.models.values()]
    seen = {o["modelId"] for o in out}
    for alias, target in registry.alias_table():
        if alias.is_pattern or alias.pattern in seen or target not in registry.models:
            continue
        seen.add(alias.pattern)
        # describe the model a call with this id reaches: a user's pattern may win over a built-in id
        reached = registry.resolve(alias.pattern).info
        out.append(_summary(alias.pattern, reached, region, alias))
    return out


async def list_foundation_models(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    items = summaries(call.platform.registry, call.platform.settings.region)
    if "byProvider" in params:
        items = [i for i in items if i["providerName"].lower() == params["byProvider"].lower()]
    if "byOutputModality" in params:
        items = [i for i in items if params["byOutputModality"] in i["outputModalities"]]
    if "byCustomizationType" in params:
        items = [i for i in items if params["byCustomizationType"] in i["customizationsSupported"]]
    if "byInferenceType" in params:
        items = [i for i in items if params["byInferenceType"] in i["inferenceTypesSupported"]]
    return {"modelSummaries": items}


async def get_foundation_model(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    res = call.platform.registry.resolve(params["modelIdentifier"])
    model_id = strip_arn(params["modelIdentifier"])
    if res.alias is None and model_id != res.info.id:
        raise NotFoundError(f"model {model_id!r} not found")
    return {"modelDetails": _summary(model_id, res.info, call.platform.settings.region, res.alias)}


OPERATIONS = {
    ("bedrock", "ListFoundationModels"): list_foundation_models,
    ("bedrock", "GetFoundationModel"): get_foundation_model,
}
