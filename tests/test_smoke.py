from typing import Any


def test_converse_echo(runtime: Any) -> None:
    out = runtime.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "こんにちは、はにわ"}]}],
        system=[{"text": "be brief"}],
        inferenceConfig={"maxTokens": 50},
    )
    assert out["output"]["message"]["content"][0]["text"] == "こんにちは、はにわ"
    assert out["stopReason"] == "end_turn"
    assert out["usage"]["inputTokens"] > 0
