"""The decoded cache: a source's arrays under `$NASX_CACHE/decoded/`, keyed by the source's path, size and mtime,
written atomically; a second load (and the input shape) is a file read."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

import torch

from ..net.fit import InputShape
from .dataset import Progress, Raw

__all__ = ["cache_dir", "cached", "cached_input", "fingerprint", "CACHE_VERSION"]

CACHE_VERSION = 1


def cache_dir() -> Path:
    """$NASX_CACHE, default ~/.cache/nasx."""
    return Path(os.environ.get("NASX_CACHE") or Path.home() / ".cache" / "nasx").expanduser()


def fingerprint(path: Path) -> str:
    """Path + size + mtime of the source (of every file under it, for a folder)."""
    h = hashlib.sha256(str(path.resolve()).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"|{p.relative_to(path) if p != path else ''}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _cache_file(key: str, path: Path) -> Path:
    """Where the decoded arrays of `key` read from `path` (as it is now) lie."""
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)[:40]
    return cache_dir() / "decoded" / f"{slug}-{fingerprint(path)}-v{CACHE_VERSION}.pt"


def _read(file: Path, path: Path, mmap: bool = False) -> Optional[Raw]:
    """The cached Raw, or None when the file is missing, truncated or foreign (then it is decoded again and
    overwritten); with `mmap` the tensors are mapped, not read (their shapes cost nothing)."""
    if not file.is_file():
        return None
    try:
        blob = torch.load(file, weights_only=True, mmap=mmap)
        return Raw(name=blob["name"], train_x=blob["train_x"], train_y=blob["train_y"], test_x=blob.get("test_x"),
                   test_y=blob.get("test_y"), classes=tuple(json.loads(blob["classes"].numpy().tobytes())),
                   source=str(path), content_hash=blob["content_hash"].numpy().tobytes().decode())
    except Exception:
        return None


def _write(file: Path, raw: Raw) -> None:
    """Save `raw` atomically (concurrent loaders see the old state or the whole file); a full or read-only disk is
    one OSError that names the folder and the way out, with no cut temp file left behind."""
    file.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "name": raw.name, "train_x": raw.train_x, "train_y": raw.train_y,
        "classes": torch.frombuffer(bytearray(json.dumps(list(raw.classes)).encode()), dtype=torch.uint8),
        "content_hash": torch.frombuffer(bytearray(raw.content_hash.encode()), dtype=torch.uint8),
    }
    if raw.test_x is not None:
        blob["test_x"], blob["test_y"] = raw.test_x, raw.test_y
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(blob, tmp)
        os.replace(tmp, file)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        code = getattr(e, "errno", None)
        size = sum(t.numel() * t.element_size() for t in blob.values() if isinstance(t, torch.Tensor))
        if code is None and shutil.disk_usage(file.parent).free < size:
            code = errno.ENOSPC
        reason = os.strerror(code) if code else str(e).strip().splitlines()[0]
        raise OSError(code or errno.EIO, f"cannot write the decoded-data cache ({reason}); free space there or set "
                                         f"NASX_CACHE to a folder with room", str(file.parent)) from None


def cached(key: str, path: Path, read: Callable[[], Raw], progress: Progress | None) -> Raw:
    """The Raw of `key` at `path`: read from the cache when it is fresh, else `read()` and stored."""
    file = _cache_file(key, path)
    raw = _read(file, path)
    if raw is None:
        raw = read()
        _write(file, raw)
    return raw


def cached_input(key: str, path: Path) -> Optional[InputShape]:
    """The input shape of `key` at `path` from its fresh cache file (tensors mapped, not read), else None."""
    raw = _read(_cache_file(key, path), path, mmap=True)
    if raw is None:
        return None
    return InputShape(int(raw.train_x.shape[-1]), int(raw.train_x.shape[1]), len(raw.classes))
