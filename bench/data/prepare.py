"""Regenerate the retrieval evaluation sets under ``bench/data/`` from their published sources.

Usage::

    python bench/data/prepare.py --jglue PATH --cranfield PATH [--out bench/data] [--no-verify]

``--jglue``: a checkout of https://github.com/yahoojapan/JGLUE (v1.3.0, commit 6f071c0), or any folder
holding ``jsquad-v1.3/valid-v1.3.json`` and ``jsquad-v1.3/test-v1.3.json`` (searched for under it).

``--cranfield``: a folder holding the Cranfield 1400 files ``cran.all.1400``, ``cran.qry`` and ``cranqrel``
(as in the University of Glasgow's ``cran.tar.gz``), or that tarball itself.

The inputs are checked against the SHA-256 digests below (Cranfield after normalising line endings and
trailing blanks, since the copies in circulation differ only there); ``--no-verify`` skips the check.
See ``bench/data/README.md`` for provenance, licences and the exact conversion rules.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

JSQUAD_FILES: dict[str, str] = {
    "valid-v1.3.json": "fb0a57a35281ff03bbe7f0e878cff5b577985fbe6fcb242e7e8ddb63d1c0ab11",
    "test-v1.3.json": "0078f3f2e1604a201700c24139e198344fa689e02282fc00adaa31687cce2aff",
}
CRANFIELD_FILES: dict[str, str] = {  # digests of the normalised text (see _normalise)
    "cran.all.1400": "b234544b6ceccd131520df4a3cb6d42aee6576eb577933d047e722bbfe7b0b09",
    "cran.qry": "dd9b1419f678874daf66d5239ca372193722d74f5ea749f3b0f46a6b37cd9274",
    "cranqrel": "3b9fcdcfc6e21246a7e82f7e29b99807fd96788531cb5987799493b2a9facbad",
}
JSQUAD_QUERIES = 300


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(name: str, data: bytes, expected: str, verify: bool) -> None:
    got = _sha256(data)
    if verify and got != expected:
        raise SystemExit(f"{name}: sha256 {got} != expected {expected} (use --no-verify to override)")


def _normalise(text: str) -> str:
    lines = text.replace("\r", "").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip() + "\n"


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------- writing


def _write_set(
    out: Path,
    corpus: list[tuple[str, str, str]],
    queries: list[tuple[str, str]],
    qrels: list[tuple[str, str, int]],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    # mtime=0 and no file name in the header: byte-identical output on every run
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for doc_id, title, text in corpus:
            row = {"id": doc_id, "title": title, "text": text}
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
    (out / "corpus.jsonl.gz").write_bytes(buf.getvalue())
    with (out / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for qid, text in queries:
            f.write(json.dumps({"id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (out / "qrels.tsv").open("w", encoding="utf-8", newline="\n") as f:
        f.write("qid\tdocid\trelevance\n")
        for qid, doc_id, rel in qrels:
            f.write(f"{qid}\t{doc_id}\t{rel}\n")
    print(f"{out.name}: {len(corpus)} passages, {len(queries)} queries, {len(qrels)} qrels")


# ---------------------------------------------------------------- JSQuAD (Japanese)


def _find(root: Path, name: str) -> Path:
    hits = sorted(p for p in root.rglob(name) if p.parent.name == "jsquad-v1.3")
    if not hits:
        raise SystemExit(f"{name} not found under {root}")
    return hits[0]


def _sample_key(qid: str) -> str:
    return hashlib.sha1(qid.encode("utf-8")).hexdigest()


def build_jsquad(jglue: Path, out: Path, verify: bool) -> None:
    """Question -> the Wikipedia paragraph it was written from (relevance 1).

    Corpus: every distinct paragraph of the JSQuAD v1.3 validation and test splits.
    Queries: 300 validation questions, at most one per paragraph, chosen by ascending SHA-1 of the
    question id (deterministic, independent of Python's RNG).
    """
    corpus: dict[str, tuple[str, str]] = {}
    by_text: dict[str, str] = {}
    valid_questions: list[tuple[str, str, str]] = []  # (qid, question, paragraph id)
    for fname, expected in JSQUAD_FILES.items():
        raw = _find(jglue, fname).read_bytes()
        _check(fname, raw, expected, verify)
        data: dict[str, Any] = json.loads(raw)
        for article in data["data"]:
            title: str = article["title"]
            for para in article["paragraphs"]:
                context: str = para["context"]
                prefix = f"{title} [SEP] "
                if not context.startswith(prefix):
                    raise SystemExit(f"unexpected context layout in {fname}: {context[:60]!r}")
                text = context[len(prefix) :].strip()
                qas: list[dict[str, Any]] = para["qas"]
                pid = qas[0]["id"].rsplit("q", 1)[0]  # 'a1025052p0q3' -> 'a1025052p0'
                if any(qa["id"].rsplit("q", 1)[0] != pid for qa in qas):
                    raise SystemExit(f"inconsistent question ids in paragraph {pid}")
                if context in by_text:  # identical paragraph seen before: reuse its id
                    pid = by_text[context]
                else:
                    if pid in corpus:
                        raise SystemExit(f"duplicate paragraph id {pid}")
                    by_text[context] = pid
                    corpus[pid] = (title, text)
                if fname.startswith("valid"):
                    valid_questions.extend((qa["id"], qa["question"].strip(), pid) for qa in qas)
    chosen: list[tuple[str, str, str]] = []
    used: set[str] = set()
    for qid, question, pid in sorted(valid_questions, key=lambda q: _sample_key(q[0])):
        if pid in used:
            continue
        used.add(pid)
        chosen.append((qid, question, pid))
        if len(chosen) == JSQUAD_QUERIES:
            break
    chosen.sort(key=lambda q: q[0])
    _write_set(
        out,
        [(pid, title, text) for pid, (title, text) in sorted(corpus.items())],
        [(qid, question) for qid, question, _ in chosen],
        [(qid, pid, 1) for qid, _, pid in chosen],
    )


# ---------------------------------------------------------------- Cranfield (English)


def _read_cranfield(src: Path, verify: bool) -> dict[str, str]:
    texts: dict[str, str] = {}
    if src.is_file():
        with tarfile.open(src) as tar:
            for member in tar.getmembers():
                base = Path(member.name).name
                if base in CRANFIELD_FILES and member.isfile():
                    fobj = tar.extractfile(member)
                    if fobj is not None:
                        texts[base] = fobj.read().decode("ascii")
    else:
        for base in CRANFIELD_FILES:
            hits = sorted(src.rglob(base))
            if hits:
                texts[base] = hits[0].read_text(encoding="ascii")
    for base, expected in CRANFIELD_FILES.items():
        if base not in texts:
            raise SystemExit(f"{base} not found in {src}")
        texts[base] = _normalise(texts[base])
        _check(base, texts[base].encode("ascii"), expected, verify)
    return texts


def _fields(text: str) -> Iterable[tuple[str, dict[str, str]]]:
    """Split SMART-format text ('.I n' records with '.T', '.A', '.B', '.W' fields)."""
    for record in re.split(r"^\.I ", text, flags=re.M)[1:]:
        head, _, body = record.partition("\n")
        fields: dict[str, str] = {}
        for part in re.split(r"^\.(?=[TABW]\n)", body, flags=re.M):
            if part[:2] in {"T\n", "A\n", "B\n", "W\n"}:
                fields[part[0]] = _collapse(part[2:])
        yield head.strip(), fields


def build_cranfield(src: Path, out: Path, verify: bool) -> None:
    """Cranfield 1400 with its original judgements.

    Query ids: the 225 queries numbered 1..225 in file order (cran.qry's own '.I' numbers skip values,
    while cranqrel uses the sequential numbers; ir_datasets does the same).
    Relevance: Cleverdon codes 1 (complete answer) .. 4 (minimum interest) become 4 .. 1; code -1
    ("no interest") is dropped. Documents with no abstract (.W empty: 471 and 995) are dropped.
    """
    texts = _read_cranfield(src, verify)
    corpus: list[tuple[str, str, str]] = []
    for doc_id, fields in _fields(texts["cran.all.1400"]):
        text = fields.get("W", "")
        if text:
            corpus.append((str(int(doc_id)), fields.get("T", ""), text))
    doc_ids = {d for d, _, _ in corpus}
    queries = [(str(n), f["W"]) for n, (_, f) in enumerate(_fields(texts["cran.qry"]), start=1)]
    qrels: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for line in texts["cranqrel"].splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        qid, doc_id, code = str(int(parts[0])), str(int(parts[1])), int(parts[2])
        if code not in (1, 2, 3, 4) or doc_id not in doc_ids or (qid, doc_id) in seen:
            continue
        seen.add((qid, doc_id))
        qrels.append((qid, doc_id, 5 - code))
    judged = {q for q, _, _ in qrels}
    queries = [(qid, text) for qid, text in queries if qid in judged]
    qrels.sort(key=lambda r: (int(r[0]), -r[2], int(r[1])))
    _write_set(out, corpus, queries, qrels)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jglue", type=Path, help="JGLUE checkout (for jsquad-ja)")
    parser.add_argument("--cranfield", type=Path, help="folder or cran.tar.gz (for cranfield-en)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: bench/data)")
    parser.add_argument("--no-verify", action="store_true", help="skip the SHA-256 checks of the inputs")
    args = parser.parse_args()
    if args.jglue is None and args.cranfield is None:
        parser.error("give --jglue and/or --cranfield")
    if args.jglue is not None:
        build_jsquad(args.jglue, args.out / "jsquad-ja", not args.no_verify)
    if args.cranfield is not None:
        build_cranfield(args.cranfield, args.out / "cranfield-en", not args.no_verify)


if __name__ == "__main__":
    main()
