"""CreateModelImportJob on a Hugging Face folder: the job writes a GGUF and llama.cpp serves it by its ARN.

The folders are tiny randomly initialised models (2 layers, hidden 32) with a small byte-level BPE
tokenizer trained here, so the answers are nonsense but the whole path is real: boto3 uploads the folder
to haniwa's S3, the import job converts it (gguf's tensor-name map, metadata, tokenizer, chat template),
llama.cpp loads the result and Converse answers with usage. A direct conversion checks the numbers:
llama.cpp's logits on the GGUF equal transformers' on the folder, for Qwen2 and Llama (whose q/k
projections are permuted on the way).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from haniwa.api.app import create_app
from haniwa.config import Settings
from haniwa.customization.hfconvert import Conversion
from haniwa.testing.server import serve_in_thread
from tests.conftest import client_kwargs

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ROLE = "arn:aws:iam::123456789012:role/r"


def _tiny_hf(folder: Path, architecture: str = "Qwen2ForCausalLM") -> Path:
    """A tiny random model of ``architecture`` saved as a Hugging Face folder with its own BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["hello world, the quick brown fox", "こんにちは世界、埴輪です"] * 20, trainer)
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"chat_template": CHATML, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.manual_seed(0)
    shape: dict[str, Any] = dict(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        initializer_range=0.5,  # attention far from uniform, so rotary positions show in the logits
    )
    if architecture == "Qwen2ForCausalLM":  # Qwen2's rope base, not the default 10000
        rope = {"rope_type": "default", "rope_theta": 1e6}
        config = Qwen2Config(**shape, tie_word_embeddings=True, rope_parameters=rope)
        Qwen2ForCausalLM(config).save_pretrained(str(folder))
    else:  # Llama 3's frequency-dependent rope scaling, all three of its bands within head_dim 8
        rope = {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0}
        rope |= {"high_freq_factor": 4.0, "original_max_position_embeddings": 256}
        LlamaForCausalLM(LlamaConfig(**shape, rope_parameters=rope)).save_pretrained(str(folder))
    return folder


def _upload(s3: Any, folder: Path, bucket: str, prefix: str) -> None:
    for path in sorted(folder.iterdir()):
        s3.upload_file(str(path), bucket, f"{prefix}{path.name}")


def _start(bedrock: Any, name: str, uri: str) -> str:
    return str(
        bedrock.create_model_import_job(
            jobName=name,
            importedModelName=f"{name}-model",
            roleArn=ROLE,
            modelDataSource={"s3DataSource": {"s3Uri": uri}},
        )["jobArn"]
    )


def _finished(bedrock: Any, arn: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (job := bedrock.get_model_import_job(jobIdentifier=arn))["status"] == "InProgress":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return dict(job)


@pytest.fixture
def url(settings: Settings) -> Any:
    with serve_in_thread(create_app(settings)) as u:
        yield u


def test_a_qwen2_folder_imports_and_answers_by_its_arn(url: str, settings: Settings, tmp_path: Path) -> None:
    kw = client_kwargs(url)
    s3, bedrock, runtime = (boto3.client(s, **kw) for s in ("s3", "bedrock", "bedrock-runtime"))
    s3.create_bucket(Bucket="hf-models")
    _upload(s3, _tiny_hf(tmp_path / "qwen"), "hf-models", "tiny-qwen/")
    s3.put_object(Bucket="hf-models", Key="tiny-qwen/README.md", Body=b"# not copied")
    job = _finished(bedrock, _start(bedrock, "qwen-hf", "s3://hf-models/tiny-qwen/"))
    assert job["status"] == "Completed", job.get("failureMessage")
    model = bedrock.get_imported_model(modelIdentifier=job["importedModelArn"])
    assert model["modelArchitecture"] == "qwen2" and model["modelName"] == "qwen-hf-model"
    imports = settings.home / "imports"
    assert [p.suffix for p in imports.iterdir()] == [".gguf"]  # the copied folder is gone
    for text in ("hello world", "こんにちは"):
        out = runtime.converse(
            modelId=job["importedModelArn"],
            messages=[{"role": "user", "content": [{"text": text}]}],
            inferenceConfig={"maxTokens": 8, "temperature": 0},
        )
        assert out["stopReason"] in ("end_turn", "max_tokens")
        assert isinstance(out["output"]["message"]["content"][0]["text"], str)
        usage = out["usage"]
        assert usage["inputTokens"] > 0 and 0 < usage["outputTokens"] <= 8
        assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_unsupported_sources_fail_naming_what_is_supported(url: str, tmp_path: Path) -> None:
    kw = client_kwargs(url)
    s3, bedrock = boto3.client("s3", **kw), boto3.client("bedrock", **kw)
    s3.create_bucket(Bucket="hf-models")
    folder = _tiny_hf(tmp_path / "qwen")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    s3.put_object(
        Bucket="hf-models",
        Key="gpt2/config.json",
        Body=json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}).encode(),
    )
    s3.put_object(
        Bucket="hf-models", Key="gpt2/model.safetensors", Body=(folder / "model.safetensors").read_bytes()
    )
    _upload(s3, folder, "hf-models", "spm/")
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["model"]["byte_fallback"] = True  # a SentencePiece-style BPE, not byte-level
    s3.put_object(Bucket="hf-models", Key="spm/tokenizer.json", Body=json.dumps(tokenizer).encode())
    s3.put_object(Bucket="hf-models", Key="noweights/config.json", Body=json.dumps(config).encode())
    _upload(s3, folder, "hf-models", "torn/")
    torn = (folder / "model.safetensors").read_bytes()[:100]
    s3.put_object(Bucket="hf-models", Key="torn/model.safetensors", Body=torn)

    gpt2 = _finished(bedrock, _start(bedrock, "gpt2", "s3://hf-models/gpt2/"))
    assert gpt2["status"] == "Failed"
    message = gpt2["failureMessage"]
    assert "GPT2LMHeadModel" in message and "Qwen2ForCausalLM" in message and "LlamaForCausalLM" in message
    spm = _finished(bedrock, _start(bedrock, "spm", "s3://hf-models/spm/"))
    assert spm["status"] == "Failed" and "byte-level BPE" in spm["failureMessage"]
    bare = _finished(bedrock, _start(bedrock, "bare", "s3://hf-models/noweights/"))
    assert bare["status"] == "Failed" and ".safetensors" in bare["failureMessage"]
    cut = _finished(bedrock, _start(bedrock, "torn", "s3://hf-models/torn/"))
    assert cut["status"] == "Failed" and "not a readable safetensors file" in cut["failureMessage"]
    assert bedrock.list_imported_models()["modelSummaries"] == []


@pytest.mark.parametrize("architecture", ["Qwen2ForCausalLM", "LlamaForCausalLM"])
def test_the_gguf_computes_what_transformers_computes(architecture: str, tmp_path: Path) -> None:
    import numpy as np
    import torch
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM

    folder = _tiny_hf(tmp_path / "hf", architecture)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if architecture == "Qwen2ForCausalLM":  # the config.json of transformers 4: rope_theta at the top
        config["rope_theta"] = config.pop("rope_parameters")["rope_theta"]
        (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    conversion = Conversion(folder, tmp_path / "out.gguf", f16=False)
    conversion.start()
    for i in range(len(conversion.tensors)):
        conversion.write(i)
    conversion.finish()
    ids = [5, 40, 77, 100, 200, 12, 99, 150, 3, 260, 17, 64, 301, 8, 45, 120]
    with torch.no_grad():
        want = AutoModelForCausalLM.from_pretrained(str(folder))(torch.tensor([ids])).logits[0, -1].numpy()
    # an f32 KV cache (type 0): the default f16 one alone moves these sharp attentions' logits by ~1 %
    llm = Llama(str(tmp_path / "out.gguf"), n_ctx=64, logits_all=True, verbose=False, type_k=0, type_v=0)
    llm.eval(ids)
    got = np.array(llm.scores[len(ids) - 1])
    assert np.abs(want - got).max() < 1e-3 * max(1.0, float(np.abs(want).max()))
    assert llm.metadata["tokenizer.chat_template"] == CHATML
    added = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    im_end = next(t["id"] for t in added if t["content"] == "<|im_end|>")
    assert llm.token_eos() == im_end  # from tokenizer_config.json through gguf.SpecialVocab


@pytest.mark.model
def test_the_bundled_qwen_as_a_hugging_face_folder_imports_and_answers(home: Path) -> None:
    """The bundled 0.5B dequantized to a float32 Hugging Face folder (what customization caches: 151,936
    tokens, the real chat template in chat_template.jinja), put in haniwa's S3 by hard links (2.5 GB),
    imported: the GGUF the job writes answers arithmetic and Japanese."""
    import os

    from haniwa.customization.trainer import ensure_base
    from haniwa.runtime import bundled
    from tests.needs import MODELS_DIR, bundled_weights_missing, need

    if bundled_weights_missing():
        need("bundled weights", str(bundled_weights_missing()))
    bundle = "qwen2.5-coder-0.5b"
    folder = ensure_base(str(bundled.ensure(bundle, MODELS_DIR)), str(MODELS_DIR / "hf" / bundle))
    prefix = home / "s3" / "hf-models" / "qwen"
    prefix.mkdir(parents=True)
    for path in folder.iterdir():
        try:
            os.link(path, prefix / path.name)
        except OSError:
            (prefix / path.name).write_bytes(path.read_bytes())
    with serve_in_thread(create_app(Settings(home=home, profile="fast"))) as u:
        kw = client_kwargs(u)
        bedrock, runtime = boto3.client("bedrock", **kw), boto3.client("bedrock-runtime", **kw)
        job = _finished(bedrock, _start(bedrock, "qwen-real", "s3://hf-models/qwen/"), timeout=900)
        assert job["status"] == "Completed", job.get("failureMessage")
        for question, answer in (
            ("What is 2 + 3? Answer with the number only.", "5"),
            ("日本の首都はどこですか？一語で答えてください。", "京"),
        ):
            out = runtime.converse(
                modelId=job["importedModelArn"],
                messages=[{"role": "user", "content": [{"text": question}]}],
                inferenceConfig={"maxTokens": 16, "temperature": 0},
            )
            assert answer in out["output"]["message"]["content"][0]["text"], out
            assert out["usage"]["outputTokens"] > 0
