"""Where a dataset comes from: found locally (`data_dir`, `$NASX_DATA`, the system's copy, nasx's own cache) or
downloaded once (md5-checked); `locate` decodes nothing."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .cache import cache_dir
from .dataset import DataError, DataNotFound, Progress
from .formats import FASHION_FILES, idx_file

__all__ = ["DATASETS", "Located", "locate", "download_files", "DOWNLOADS"]

DATASETS = ("cifar10", "cifar100", "fashion-mnist", "imagefolder:PATH", "synthetic[:SIDE]")


@dataclass(frozen=True)
class Located:
    """Where a dataset will come from: a file or folder (`path`, `kind`), a download, or generated data."""

    key: str
    path: Optional[Path]
    kind: str  # a reader kind, "download" or "synthetic"


def locate(name: str, *, data_dir: str | Path | None = None, download: bool = True) -> Located:
    """Find `name` without decoding anything; DataError (one line, what was looked at) if it cannot be had.

    A `data_dir` that was given must exist, and is then looked in before nasx's own download cache only
    (never silently replaced by $NASX_DATA or the system's copy)."""
    key = name.strip()
    if key == "synthetic" or key.startswith("synthetic:"):
        side = key.partition(":")[2]
        if side and not (side.isdigit() and 8 <= int(side) <= 64):
            raise DataError(f"synthetic:{side}: the image side must be an integer in 8..64")
        return Located(key, None, "synthetic")
    if key.startswith("imagefolder:"):
        path = Path(key.split(":", 1)[1]).expanduser()
        if not path.exists():
            raise DataNotFound(f"imagefolder: {path} does not exist (give a folder with train/<class>/* "
                               "[and test/<class>/*], or <class>/*, or a .tar.gz of one)")
        return Located(key, path, "imagefolder")
    if key not in _FINDERS:
        raise DataError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataNotFound(f"--data-dir {data_dir}: no such folder")
    looked: list[str] = []
    for root, why in _roots(data_dir):
        found = _FINDERS[key](root)
        looked.append(f"{root} ({why})")
        if found is not None:
            return Located(key, found[0], found[1])
    offline = os.environ.get("NASX_OFFLINE", "").strip() not in ("", "0", "false", "no")
    if download and not offline and key in DOWNLOADS:
        return Located(key, None, "download")
    why = "--no-download was given" if not download else "NASX_OFFLINE=1 is set" if offline else "no download for it"
    raise DataNotFound(
        f"{key} not found; looked in {'; '.join(looked) or 'nowhere'}. {_HOW[key]} "
        f"Give its folder with --data-dir DIR or NASX_DATA=DIR"
        + (f" (not downloading: {why})." if key in DOWNLOADS else ".")
    )


# ---------------------------------------------------------------------------------------------
# Where to look


def _roots(data_dir: str | Path | None) -> list[tuple[Path, str]]:
    roots: list[tuple[Path, str]] = []
    if data_dir:  # given: looked in first, then only where nasx itself downloads to (never $NASX_DATA instead)
        return [(Path(data_dir).expanduser(), "--data-dir"), (cache_dir() / "data", "cache")]
    if os.environ.get("NASX_DATA"):
        roots.append((Path(os.environ["NASX_DATA"]).expanduser(), "NASX_DATA"))
    roots.append((Path("/usr/share/datasets"), "system"))
    roots.append((cache_dir() / "data", "cache"))
    return roots


def _candidates(root: Path, *names: str) -> list[Path]:
    """root itself and root/<alias> for each alias (a data dir may hold several datasets)."""
    return [root] + [root / n for n in names]


def _is_imagefolder(d: Path) -> bool:
    return (d / "train").is_dir() and any(p.is_dir() for p in (d / "train").iterdir())


def _find_cifar(root: Path, folder: str, archive: str, aliases: tuple[str, ...]):
    if root.is_file():
        return (root, "tar") if root.name.endswith((".tar.gz", ".tgz", ".tar")) else None
    for d in _candidates(root, *aliases):
        if not d.is_dir():
            continue
        if (d / folder).is_dir():
            return d / folder, "pickle"
        if d.name == folder:
            return d, "pickle"
        if (d / archive).is_file():
            return d / archive, "tar"
        if _is_imagefolder(d):
            return d, "imagefolder"
        # any archive in a folder named for the dataset; in a general data dir, one named for it
        archives = sorted(p for p in list(d.glob("*.tar.gz")) + list(d.glob("*.tgz"))
                          if d is not root or _names_dataset(p.name, aliases[0]))
        if archives:
            return archives[0], "tar"
    return None


def _names_dataset(filename: str, key: str) -> bool:
    """'cifar10-jpeg.tar.gz' names cifar10; 'cifar-100-python.tar.gz' names cifar100, not cifar10."""
    flat = filename.lower().replace("-", "").replace("_", "")
    at = flat.find(key)
    return at >= 0 and not flat[at + len(key): at + len(key) + 1].isdigit()


def _find_fashion(root: Path):
    if root.is_file():
        root = root.parent
    for d in _candidates(root, "fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw"):
        if all(idx_file(d, stem) for stem in FASHION_FILES):
            return d, "idx"
    return None



_FINDERS: dict[str, Callable[[Path], tuple[Path, str] | None]] = {
    "cifar10": lambda r: _find_cifar(r, "cifar-10-batches-py", "cifar-10-python.tar.gz", ("cifar10", "cifar-10", "CIFAR10")),
    "cifar100": lambda r: _find_cifar(r, "cifar-100-python", "cifar-100-python.tar.gz", ("cifar100", "cifar-100", "CIFAR100")),
    "fashion-mnist": _find_fashion,
}

_HOW = {
    "cifar10": "Provide torchvision's cifar-10-batches-py/ (or cifar-10-python.tar.gz), an image folder "
               "train/<class>/ test/<class>/, or a .tar.gz of one.",
    "cifar100": "Provide torchvision's cifar-100-python/ (or cifar-100-python.tar.gz) or an image folder "
                "train/<class>/ test/<class>/.",
    "fashion-mnist": "Provide the four idx files (train-images-idx3-ubyte.gz, ...), e.g. from Debian's "
                     "dataset-fashion-mnist package.",
}

DOWNLOADS = {
    "cifar10": [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")],
    "cifar100": [("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")],
    "fashion-mnist": [
        (f"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{stem}.gz", md5)
        for stem, md5 in zip(FASHION_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                              "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"))
    ],
}


def download_files(key: str, progress: Progress | None) -> tuple[Path, str]:
    """torchvision's files into $NASX_CACHE/data/<key>/, md5-checked; returns what the finder would."""
    dest_dir = cache_dir() / "data" / key
    dest_dir.mkdir(parents=True, exist_ok=True)
    for url, md5 in DOWNLOADS[key]:
        dest = dest_dir / url.rsplit("/", 1)[1]
        if dest.is_file() and _md5(dest) == md5:
            continue
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(f"download {dest.name}", done, total)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{key}: download of {url} failed ({e}); get it by hand and pass --data-dir") from None
        got = _md5(tmp)
        if got != md5:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{key}: {url} has md5 {got}, expected {md5}; not using it")
        tmp.replace(dest)
    found = _FINDERS[key](dest_dir)
    assert found is not None, dest_dir
    return found


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
