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
    mp.setenv("NASX_SNAPSHOT_KEY", str(cache / "snapshot.key"))  # snapshots' HMAC key: never the user's own
    yield cache
    mp.undo()


def _on_this_machine(address) -> bool:
    """A socket address on this machine: a Unix socket, localhost or a loopback IP (PostgreSQL of .ci/run)."""
    import ipaddress

    if not isinstance(address, tuple):
        return True  # a Unix socket's path
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost


@pytest.fixture(scope="session", autouse=True)
def offline_sockets():
    """No test reaches beyond this machine (CI has no network): a connection to another host fails at once,
    naming the address, instead of hanging until a timeout. Processes a test starts are not covered."""
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(address):
        raise OSError(f"a test tried the network: {address!r}")

    def connect(self, address):
        return real_connect(self, address) if _on_this_machine(address) else refuse(address)

    def connect_ex(self, address):
        return real_connect_ex(self, address) if _on_this_machine(address) else refuse(address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


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
