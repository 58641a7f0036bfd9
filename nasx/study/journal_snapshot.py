"""Journal snapshots: Optuna's own replay state, saved beside a journal file, so that opening a study of
10,000 trials reads one file and the records written since instead of replaying every record.

Optuna's `JournalStorage` asks a backend that is a `BaseJournalSnapshot` for a snapshot when it opens (it
then replays only the records after it), and hands it a new one every 100 trials a process creates. This
backend keeps it in `<journal>.snapshot`: a header line (format, Optuna and Python versions, the hash of the
journal's first record, the journal's size when it was taken) and the compressed pickle. A snapshot is a
cache and is never trusted blindly: one of another Optuna or Python, of another journal (a study written
anew under the same name), of a journal now shorter than it was, or not owned by this user or writable by
others (a pickle runs code when read) is ignored, and the journal is replayed whole, as without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import zlib
from pathlib import Path
from typing import Optional

from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._base import BaseJournalSnapshot  # what JournalStorage checks for (Optuna >= 4.0)

__all__ = ["SnapshotJournal", "snapshot_path"]

_FORMAT = 1


def snapshot_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".snapshot")


def _versions() -> dict:
    import optuna

    return {"format": _FORMAT, "optuna": optuna.__version__, "python": platform.python_version()}


def _first_record_hash(journal: Path) -> Optional[str]:
    """The hash of the journal's first record (it names the process that created the study: unique per journal)."""
    try:
        with open(journal, "rb") as f:
            first = f.readline()
    except OSError:
        return None
    return hashlib.sha256(first).hexdigest() if first.endswith(b"\n") else None


class SnapshotJournal(JournalFileBackend, BaseJournalSnapshot):
    """A journal file whose Optuna replay state is saved to and read from `<journal>.snapshot`
    (`writable=False`: read, never saved)."""

    def __init__(self, file_path: str, lock_obj=None, *, writable: bool = True) -> None:
        super().__init__(file_path, lock_obj)
        self._journal = Path(file_path)
        self._writable = writable

    def save_snapshot(self, snapshot: bytes) -> None:
        """Header line, then the zlib-compressed pickle; written to a temporary file and renamed (readers see the
        old or the new one whole). A snapshot that cannot be written (full disk, read-only folder) is skipped."""
        if not self._writable:
            return
        first = _first_record_hash(self._journal)
        if first is None:
            return
        try:
            size = self._journal.stat().st_size
        except OSError:
            return  # a cache: the journal alone still holds every record
        header = {**_versions(), "first_record": first, "journal_size": size}
        # where the records after the snapshot start: the last record this process read, which its replay (the
        # snapshot) has just applied; a reader seeks there instead of reading every line before it
        offsets = getattr(self, "_log_number_offset", None)  # JournalFileBackend's map: record number -> byte
        if offsets:
            header["records"], header["offset"] = max(offsets.items())
        target = snapshot_path(self._journal)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n")
                f.write(zlib.compress(snapshot, 1))
            os.replace(tmp, target)
            tmp = None
        except OSError:
            pass  # a cache: the journal alone still holds every record
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _seek_to(self, records: Optional[int], offset: Optional[int]) -> None:
        """Let the next read of the records from number `records` on start at byte `offset` (when that byte ends a
        line, as it must)."""
        offsets = getattr(self, "_log_number_offset", None)
        if not isinstance(offsets, dict) or not isinstance(records, int) or not isinstance(offset, int) or offset <= 0:
            return
        with open(self._journal, "rb") as f:
            f.seek(offset - 1)
            if f.read(1) == b"\n":
                offsets[records] = offset

    def load_snapshot(self) -> Optional[bytes]:
        """The saved replay state, or None when there is none or it does not belong to this journal as it is now."""
        path = snapshot_path(self._journal)
        try:
            st = path.stat()
            if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or st.st_mode & 0o022:
                return None
            with open(path, "rb") as f:
                header = json.loads(f.readline())
                body = f.read()
            if ({k: header.get(k) for k in ("format", "optuna", "python")} != _versions()
                    or header.get("first_record") != _first_record_hash(self._journal)
                    or self._journal.stat().st_size < int(header.get("journal_size", 1 << 62))):
                return None
            state = zlib.decompress(body)
            self._seek_to(header.get("records"), header.get("offset"))
            return state
        except (OSError, ValueError, zlib.error):
            return None
