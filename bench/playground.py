"""Playground benchmark: what the browser adds on top of the API it calls, measured in one run.

    python bench/playground.py                        # echo (rendering cost) and the 0.5B model
    python bench/playground.py --model llamacpp:qwen2.5-coder-1.5b --tokens 64
    python bench/playground.py --no-model             # echo only (seconds)

Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against haniwa on 127.0.0.1:

* page load: time until each panel is mounted and usable, cold (new browser context) and warm;
* streaming: one answer streamed in the Chat panel vs the same request streamed by the openai SDK
  against the same server and model: time to first token, output tokens/s, and the page/SDK ratios.
  With ``echo:echo`` (thousands of tokens a second) this is the cost of rendering itself; with a real
  model it is what a user sees.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import openai  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from haniwa.api.app import create_app  # noqa: E402
from haniwa.config import Settings  # noqa: E402
from haniwa.testing.server import serve_in_thread  # noqa: E402

MODELS_DIR = Path(os.environ.get("HANIWA_TEST_MODELS_DIR", Path.home() / ".cache" / "haniwa-test-models"))
CHROMIUM = os.environ.get("HANIWA_CHROMIUM", "/usr/bin/chromium")
PANELS = {
    "chat": "chat-input",
    "compare": "compare-run",
    "kb": "kb-new",
    "agents": "agents-refresh",
    "usage": "usage-refresh",
}
ECHO_TEXT = "はにわ " * 1000  # echo answers with the prompt: ~2,000 tokens to render


def page_load(browser: Any, url: str) -> dict[str, float]:
    """Milliseconds from navigation to the panel's main control being visible, cold then warm."""
    out: dict[str, float] = {}
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    for name, testid in PANELS.items():
        for kind in ("cold", "warm"):
            if kind == "cold":
                context.close()
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{url}/#/{name}")
            page.get_by_test_id(testid).first.wait_for(state="visible", timeout=30_000)
            out[f"{name} {kind}"] = (time.perf_counter() - t0) * 1000
    context.close()
    return out


def stream_in_page(
    browser: Any, url: str, model: str, prompt: str, max_tokens: int
) -> tuple[float, float, int]:
    """(ttft_ms, total_ms, output tokens) for one answer in the Chat panel, timed inside the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/#/chat")
    page.get_by_test_id("chat-model").select_option(model)
    page.get_by_test_id("chat-temperature").fill("0")
    page.get_by_test_id("chat-max-tokens").fill(str(max_tokens))
    page.get_by_test_id("chat-input").fill(prompt)
    # the first text and the stats line are stamped by a MutationObserver, so polling adds no delay
    page.evaluate(
        """() => {
          window.__t = {};
          const list = document.querySelector('[data-testid="chat-messages"]');
          new MutationObserver(() => {
            const a = list.querySelectorAll('[data-testid="msg-assistant"]');
            const last = a[a.length - 1];
            if (last && last.textContent && !window.__t.first) window.__t.first = performance.now();
            const done = last && last.dataset.streaming === 'false';
            if (done && !window.__t.end) window.__t.end = performance.now();
          }).observe(list, {childList: true, subtree: true, characterData: true});
        }"""
    )
    t0 = page.evaluate("performance.now()")
    page.get_by_test_id("chat-input").press("Enter")
    page.get_by_test_id("msg-stats").last.wait_for(state="visible", timeout=600_000)
    marks = page.evaluate("window.__t")
    stats = page.get_by_test_id("msg-stats").last.inner_text()
    context.close()
    tokens = int(stats.split()[0])
    return marks["first"] - t0, marks["end"] - t0, tokens


def stream_with_sdk(url: str, model: str, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
    t0 = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    assert first is not None, "no text was streamed"
    return (first - t0) * 1000, (end - t0) * 1000, tokens


def compare(browser: Any, url: str, model: str, prompt: str, max_tokens: int, runs: int) -> dict[str, Any]:
    page_runs = []
    sdk_runs = []
    stream_with_sdk(url, model, prompt, max_tokens)  # warm-up: loads the model
    for i in range(runs):
        # alternate, so a busy moment on the shared machine does not land on one side only
        sdk_runs.append(stream_with_sdk(url, model, f"{prompt} ({i})", max_tokens))
        page_runs.append(stream_in_page(browser, url, model, f"{prompt} ({i})", max_tokens))
    summary: dict[str, Any] = {"model": model}
    for side, found in (("page", page_runs), ("sdk", sdk_runs)):
        summary[f"{side} ttft"] = statistics.median(r[0] for r in found)
        summary[f"{side} total"] = statistics.median(r[1] for r in found)
        # over the whole answer: a fast stream may arrive in one network read and render in one frame
        summary[f"{side} tps"] = statistics.median(r[2] / (r[1] / 1000) for r in found)
        summary[f"{side} tokens"] = statistics.median(r[2] for r in found)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llamacpp:qwen2.5-coder-0.5b", help="the real model to stream")
    ap.add_argument("--tokens", type=int, default=48, help="max tokens per answer with the real model")
    ap.add_argument("--runs", type=int, default=3, help="answers per side (medians are printed)")
    ap.add_argument("--no-model", action="store_true", help="skip the real model")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(MODELS_DIR)
        with serve_in_thread(create_app(Settings(home=home))) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            print("## page load (ms until the panel's main control is visible)")
            for name, ms in page_load(browser, url).items():
                print(f"  {name:<14} {ms:7.0f}")
            rows = [compare(browser, url, "echo:echo", ECHO_TEXT, 4096, args.runs)]
            if not args.no_model:
                rows.append(
                    compare(
                        browser,
                        url,
                        args.model,
                        "Count from 1 to 100, separated by commas, with no other text.",
                        args.tokens,
                        args.runs,
                    )
                )
            browser.close()
    print(
        "\n| model | tokens | TTFT page / SDK (ms) | whole answer page / SDK (ms) | tokens/s page / SDK "
        "| page/SDK time |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['model']}` | {r['page tokens']:.0f} | {r['page ttft']:.0f} / {r['sdk ttft']:.0f} | "
            f"{r['page total']:.0f} / {r['sdk total']:.0f} | {r['page tps']:.1f} / {r['sdk tps']:.1f} | "
            f"{r['page total'] / r['sdk total']:.2f} |"
        )


if __name__ == "__main__":
    main()
