"""Shared fixtures for the data / train / bench tests: offline, a per-session cache, the shared datasets."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads libgomp: idle OpenMP threads sleep instead of spinning. On a shared 2-core machine
# spinning threads of concurrent test runs starved each other (a ResNet-8 step under load: 0.84 s
# spinning, 0.42 s passive, 0.35 s on one thread; 0.12 s with 2 threads at a quieter moment).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CIFAR10_ARCHIVE = SHARED_DATASETS / "cifar10" / "cifar10-jpeg.tar.gz"
FASHION_DIR = SHARED_DATASETS / "fashion-mnist"


@pytest.fixture(scope="session", autouse=True)
def nasx_offline_cache(tmp_path_factory):
    """NASX_OFFLINE=1 and NASX_CACHE in a session tmp dir (so the CIFAR-10 decode happens once); no NASX_DATA."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("nasx-cache")
    mp.setenv("NASX_OFFLINE", "1")
    mp.setenv("NASX_CACHE", str(cache))
    mp.delenv("NASX_DATA", raising=False)
    yield cache
    mp.undo()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for the data/train/bench modules (they opt in with `pytestmark`): on a shared
    2-core machine two OpenMP threads per process thrash (measured up to 20x slower under load) and tiny
    nets gain nothing from them. Tests that time real work use `all_cores`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def all_cores():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cifar10_raw():
    """The shared CIFAR-10 JPEG archive, decoded once per session."""
    if not CIFAR10_ARCHIVE.is_file():
        pytest.skip(f"real CIFAR-10 not present at {CIFAR10_ARCHIVE} (clone shared/ beside the repo)")
    from nasx import data

    return data.load_raw("cifar10", data_dir=CIFAR10_ARCHIVE.parent)


@pytest.fixture(scope="session")
def cifar10(cifar10_raw):
    from nasx import data

    return data.split(cifar10_raw, 5000, seed=0)


SLOW_BY_NAME = ("test_random_specs_count_equal_fvcore_and_numel", "test_zoo_counts_equal_at_other_resolutions")


def pytest_collection_modifyitems(config, items):
    """The slow tier, beside the explicit @pytest.mark.slow: fvcore tracing of ImageNet-sized zoo nets and
    of the random-spec sweeps (the fast tier keeps the CIFAR zoo nets and the small random specs)."""
    from nasx.net.zoo import ZOO

    for item in items:
        name = getattr(item, "originalname", item.name)
        params = getattr(getattr(item, "callspec", None), "params", {})
        big_zoo = item.module.__name__ in ("test_complexity", "test_zoo") and \
            getattr(ZOO.get(params.get("name")), "dataset", None) == "imagenet"
        if name in SLOW_BY_NAME or big_zoo:
            item.add_marker(pytest.mark.slow)
