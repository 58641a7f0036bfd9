"""Journal files: the journal's lock (an flock the kernel drops when its holder dies), one-line errors for a damaged
journal, a failed write naming the journal, and snapshots: Optuna's own replay state, saved beside a journal, so that opening a study of
10,000 trials reads one file and the records written since instead of replaying every record.

Optuna's `JournalStorage` asks a backend that is a `BaseJournalSnapshot` for a snapshot when it opens (it then
replays only the records after it), and hands it a new one every 100 trials a process creates. This backend keeps
it in `<journal>.snapshot`: a header line (format, Optuna and Python versions, where in the journal the state ends,
the SHA-256 of the journal's bytes up to there, and an HMAC of header and body) and the compressed pickle.

A pickle runs code when read, so a snapshot is read only when all of these hold, and the journal is replayed whole
(as without a snapshot) otherwise: the folder is owned by this user (or root) and not writable by others unless
sticky; the file, opened without following a symlink, is a regular file of this user not writable by others (checked
on the open handle); its HMAC, keyed by a secret of this user kept outside the studies folder (`key_path`), matches;
it was taken by the same Optuna and Python; and the journal's bytes up to its offset hash as recorded (a snapshot of
another copy of the journal, or of a study written anew, does not match).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import os
import platform
import secrets
import stat
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import BaseJournalFileLock  # the interface JournalFileBackend takes
from optuna.storages.journal._base import BaseJournalSnapshot  # what JournalStorage checks for (Optuna >= 4.0)

from ..errors import NasxError

__all__ = ["SnapshotJournal", "JournalError", "JournalFlock", "LockWatch", "flock", "snapshot_path", "key_path", "lock_path",
           "KEY_ENV", "RECORD_START"]

_FORMAT = 2
KEY_ENV = "NASX_SNAPSHOT_KEY"  # the key file's path, overriding the per-user default (tests)
RECORD_START = b'{"op_code":'  # how every record Optuna writes begins (json.dumps of {"op_code": ..., ...})
STALE_TMP = 600.0  # seconds after which a temporary snapshot file of ours is a crashed writer's, not one in progress


class JournalError(NasxError):
    """A journal that cannot be read (damaged, not a journal); the message is one line."""


def snapshot_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".snapshot")


def lock_path(journal: Path) -> Path:
    """The journal's write lock (every nasx process writing the journal takes it: an flock, never Optuna's
    symlink lock)."""
    return journal.with_name(journal.name + ".flock")


def key_path() -> Path:
    """The per-user snapshot key: $NASX_SNAPSHOT_KEY, else $XDG_CONFIG_HOME/nasx/snapshot.key (~/.config by default)."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "nasx" / "snapshot.key"


def _versions() -> dict:
    import optuna

    return {"format": _FORMAT, "optuna": optuna.__version__, "python": platform.python_version()}


def _own_private(st: os.stat_result, mask: int) -> bool:
    """A regular file of this user with none of the `mask` mode bits set."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & mask


def _read_key(path: Path) -> Optional[bytes]:
    """The key in `path` (opened without following a symlink; this user's, mode 0600 or stricter), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not _own_private(os.fstat(fd), 0o077):
            return None
        text = f.read(129)
    try:
        key = bytes.fromhex(text.decode())
    except ValueError:
        return None
    return key if len(key) == 32 else None


def _snapshot_key(create: bool) -> Optional[bytes]:
    """This user's snapshot key, made when missing and `create` (written whole to a temporary file, then linked into
    place: a racing process sees no key or the whole one); None when it cannot be read or made (no snapshots)."""
    path = key_path()
    key = _read_key(path)
    if key is not None or not create or os.path.lexists(path):
        return key
    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _install(path, secrets.token_bytes(32).hex().encode(), os.link)  # fails if another process made it first
    return _read_key(path)


def _install(path: Path, data: bytes, put: Callable[[str, Path], None]) -> None:
    """Write `data` to a temporary file (mode 0600) beside `path`, then `put` it at `path` (os.replace: readers see
    the old or the new file whole; os.link: fails if a file is there); the temporary name never stays. OSError if
    any step fails."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    moved = False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        put(tmp, path)
        moved = put is os.replace
    finally:
        if not moved:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _mac(key: bytes, header: dict, body: bytes) -> str:
    fields = json.dumps({k: v for k, v in header.items() if k != "mac"}, sort_keys=True).encode()
    return hmac.new(key, fields + b"\n" + body, hashlib.sha256).hexdigest()


def _prefix_hash(fd: int, size: int) -> Optional[str]:
    """SHA-256 of the first `size` bytes of the open file `fd` (None if it is shorter)."""
    digest = hashlib.sha256()
    done = 0
    while done < size:
        chunk = os.pread(fd, min(1 << 22, size - done), done)
        if not chunk:
            return None
        digest.update(chunk)
        done += len(chunk)
    return digest.hexdigest()


def _trusted_folder(fd: int) -> bool:
    """A folder (open handle) of this user or root that others cannot write to, or can but it is sticky (they cannot
    rename or remove this user's files in it)."""
    st = os.fstat(fd)
    return (stat.S_ISDIR(st.st_mode) and st.st_uid in (os.getuid(), 0)
            and (not st.st_mode & 0o022 or bool(st.st_mode & stat.S_ISVTX)))


@contextlib.contextmanager
def _folder(path: Path) -> Iterator[Optional[int]]:
    """The folder of `path` opened (its handle), or None when it is not a trusted folder (`_trusted_folder`)."""
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        yield fd if _trusted_folder(fd) else None
    finally:
        os.close(fd)


def _remove_stale_temps(folder: int, target: str) -> None:
    """Remove temporary snapshot files of this user (`<target>.*.tmp`, regular files) left by a writer killed before
    its rename, once older than STALE_TMP s (a younger one may be another writer's, still being written)."""
    now = time.time()
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not (name.startswith(target + ".") and name.endswith(".tmp")):
                continue
            with contextlib.suppress(OSError):
                st = os.stat(name, dir_fd=folder, follow_symlinks=False)
                if _own_private(st, 0o022) and now - st.st_mtime > STALE_TMP:
                    os.unlink(name, dir_fd=folder)


@contextlib.contextmanager
def flock(path: Path, on_wait: Optional[Callable[[float], None]] = None) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing, never through a symlink), held for the block; the kernel
    drops it when the holder dies, so a killed holder costs the next one nothing. `on_wait(seconds)` is called once
    when the lock was not free, with the seconds waited."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            started = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if on_wait is not None:
                on_wait(time.monotonic() - started)
        yield
    finally:
        os.close(fd)  # releases the lock


class LockWatch:
    """How long a journal's lock has been held, as a monitor sees it by non-blocking probes: a writer holds it for
    milliseconds, so a lock found busy on every probe for seconds has a stopped or stuck holder, and every writer
    waits behind it."""

    def __init__(self, journal: Path) -> None:
        self._path = lock_path(journal)
        self._busy_since: Optional[float] = None

    def probe(self) -> float:
        """Seconds the lock has been busy at every probe since it was first found busy (0.0 when it is free now)."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # no lock file yet: nobody holds it
            self._busy_since = None
            return 0.0
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # free: held for no longer than this call
            self._busy_since = None
            return 0.0
        except BlockingIOError:
            now = time.monotonic()
            self._busy_since = self._busy_since if self._busy_since is not None else now
            return now - self._busy_since
        finally:
            os.close(fd)


class JournalFlock(BaseJournalFileLock):
    """Optuna's journal lock interface over `flock` (each thread holds its own handle: Optuna writes from the
    heartbeat thread too)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._held = threading.local()

    def acquire(self) -> bool:
        block = flock(self._path)
        block.__enter__()
        self._held.block = block
        return True

    def release(self) -> None:
        block, self._held.block = getattr(self._held, "block", None), None
        if block is not None:
            block.__exit__(None, None, None)


class SnapshotJournal(JournalFileBackend, BaseJournalSnapshot):
    """A journal file under its flock, whose Optuna replay state is saved to and read from `<journal>.snapshot`
    (`writable=False`: read, never saved); a damaged journal is a JournalError."""

    def __init__(self, file_path: str, lock_obj: Any = None, *, writable: bool = True) -> None:
        super().__init__(file_path, lock_obj or JournalFlock(lock_path(Path(file_path))))
        self._journal = Path(file_path)
        self._writable = writable

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Optuna's records from number `log_number_from` on; a record that is not whole JSON before the end of the
        journal, or not an Optuna record, is a JournalError (a cut last record is read as absent, as Optuna does)."""
        try:
            for log in super().read_logs(log_number_from):
                if not isinstance(log, dict) or not isinstance(log.get("op_code"), int):
                    raise JournalError(f"{self._journal} is not an Optuna journal (a line that is not a journal "
                                       f"record); give --storage a journal file")
                yield log
        except ValueError:
            raise JournalError(f"journal {self._journal} is damaged (a record before its end is not whole JSON); "
                               f"restore it from a copy") from None

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        """Optuna's write under the flock; a write that fails (full disk, read-only folder) is an OSError naming the
        journal (the CLI's one line, exit 1)."""
        try:
            super().append_logs(logs)
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), str(self._journal)) from None

    def save_snapshot(self, snapshot: bytes) -> None:
        """Header line (with the journal prefix's hash and the HMAC), then the zlib-compressed pickle; written to a
        temporary file and renamed (readers see the old or the new one whole). A snapshot that cannot be written (no
        key, full disk, read-only or untrusted folder) is skipped: a cache, the journal alone holds every record."""
        # where the records after the snapshot start: the last record this process read, which its replay (the
        # snapshot) has just applied; a reader seeks there instead of reading every line before it
        offsets = getattr(self, "_log_number_offset", None)  # JournalFileBackend's map: record number -> byte
        if not self._writable or not offsets:
            return
        records, offset = max(offsets.items())
        key = _snapshot_key(create=True)
        if key is None or offset <= 0:
            return
        target = snapshot_path(self._journal)
        with _folder(target) as folder:
            if folder is None:
                return
            try:
                with open(self._journal, "rb") as journal:
                    prefix = _prefix_hash(journal.fileno(), offset)
                    size = os.fstat(journal.fileno()).st_size
                if prefix is None:
                    return
                body = zlib.compress(snapshot, 1)
                header = {**_versions(), "records": records, "offset": offset, "prefix": prefix, "journal_size": size}
                header["mac"] = _mac(key, header, body)
                _install(target, json.dumps(header).encode() + b"\n" + body, os.replace)
                _remove_stale_temps(folder, target.name)
            except OSError:
                pass

    def _open_snapshot(self) -> Optional[tuple[dict, bytes]]:
        """(header, body) of the snapshot as read through a trusted folder without following a symlink, from a regular
        file of this user that others cannot write (checked on the open handle), else None."""
        target = snapshot_path(self._journal)
        with _folder(target) as folder:
            if folder is None:
                return None
            try:
                fd = os.open(target.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder)
            except OSError:
                return None
            with os.fdopen(fd, "rb") as f:
                if not _own_private(os.fstat(fd), 0o022):
                    return None
                header = json.loads(f.readline())
                return (header, f.read()) if isinstance(header, dict) else None

    def load_snapshot(self) -> Optional[bytes]:
        """The saved replay state, or None when there is none or it cannot be trusted as this journal's (see the
        module's docstring)."""
        try:
            opened = self._open_snapshot()
            key = _snapshot_key(create=False) if opened is not None else None
            if opened is None or key is None:
                return None
            header, body = opened
            if not hmac.compare_digest(str(header.get("mac")), _mac(key, header, body)):
                return None
            records, offset = header.get("records"), header.get("offset")
            if ({k: header.get(k) for k in ("format", "optuna", "python")} != _versions()
                    or not isinstance(records, int) or not isinstance(offset, int) or offset <= 0):
                return None
            with open(self._journal, "rb") as journal:
                fd = journal.fileno()
                if os.fstat(fd).st_size < int(header.get("journal_size", 1 << 62)):
                    return None  # the journal was cut since: rewritten, not appended to
                if os.pread(fd, 1, offset - 1) != b"\n" or _prefix_hash(fd, offset) != header.get("prefix"):
                    return None  # another journal, or another copy of it that went on otherwise
            state = zlib.decompress(body)
            if not state:
                return None
            self._log_number_offset[records] = offset  # the records after the snapshot: read from there
            return state
        except (OSError, ValueError, zlib.error):
            return None

