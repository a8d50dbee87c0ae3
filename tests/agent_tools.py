"""Functions the agent tests register through ``HANIWA_AGENT_FUNCTIONS`` (``tests.agent_tools:…``),
exactly as a user declares theirs. ``CALLS`` records what ran, so tests can tell a denied action from a
run one."""

from __future__ import annotations

import time
from typing import Any

STOCK = {"アルミニウム": 120, "銅線": 45, "aluminium": 120, "copper wire": 45}
CALLS: list[tuple[str, dict[str, Any]]] = []


def get_material_stock(material_name: str) -> dict[str, Any]:
    CALLS.append(("get_material_stock", {"material_name": material_name}))
    if material_name not in STOCK:
        raise KeyError(f"unknown material {material_name!r}; known: {', '.join(STOCK)}")
    return {
        "material": material_name,
        "stock": STOCK[material_name],
        "unit": "kg" if "ア" in material_name else "m",
    }


def order_parts(material_name: str, quantity: int) -> str:
    CALLS.append(("order_parts", {"material_name": material_name, "quantity": quantity}))
    return f"ordered {quantity} of {material_name}"


def find_supplier(name: str) -> list[dict[str, str]]:
    CALLS.append(("find_supplier", {"name": name}))
    return [{"supplier_id": "SUP-7", "name": name}]


def order_from(supplier_id: str, check_in: str) -> dict[str, str]:
    CALLS.append(("order_from", {"supplier_id": supplier_id, "check_in": check_in}))
    return {"order_number": f"PO-{supplier_id}", "delivery": check_in}


def broken(material_name: str) -> str:
    raise RuntimeError("the inventory database is down")


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """A Lambda-style handler (Bedrock's event in, Bedrock's response out), run unchanged."""
    attrs = dict(event.get("sessionAttributes") or {})
    seen = attrs.get("seen", "")
    value = next(p["value"] for p in event["parameters"] if p["name"] == "material_name")
    attrs["seen"] = (seen + "," + value).strip(",")
    CALLS.append(("lambda_handler", {"material_name": value, "seen_before": seen}))
    return {
        "messageVersion": "1.0",
        "response": {
            "actionGroup": event["actionGroup"],
            "function": event["function"],
            "functionResponse": {
                "responseBody": {"TEXT": {"body": f"{value}: in stock (seen before: {seen})"}}
            },
        },
        "sessionAttributes": attrs,
    }


def slow(material_name: str) -> str:
    time.sleep(0.1)
    return "slow result"


def lambda_api(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Lambda handler for an OpenAPI action group (``event, context`` → run with Bedrock's event)."""
    params = " ".join(f"{p['name']}={p['value']}" for p in event["parameters"])
    return {
        "messageVersion": "1.0",
        "response": {
            "actionGroup": event["actionGroup"],
            "apiPath": event["apiPath"],
            "httpMethod": event["httpMethod"],
            "httpStatusCode": 200,
            "responseBody": {
                "application/json": {"body": f"{event['httpMethod']} {event['apiPath']} {params}"}
            },
        },
    }
