"""Where a study lives: Optuna storages (journal file or RDB URL), journal repair, the study-wide lock,
samplers, and opening a study with a check that it is the same experiment."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .config import OBJECTIVES, StudyConfig, StudyError, redact
from .record import StudyInfo, read_info, write_info
from ..train.budget import Budget

__all__ = ["open_storage", "study_lock", "make_sampler", "open_study", "study_info", "is_rdb", "journal_path",
           "repair_journal", "no_empty_journal"]


def is_rdb(url: str) -> bool:
    return bool(re.match(r"^[a-z0-9+]+://", url)) and not url.startswith("journal://")


def journal_path(url: str) -> Path:
    return Path(url[len("journal://"):] if url.startswith("journal://") else url)


def repair_journal(path: Path) -> Optional[str]:
    """Cut a last record that a crash left half-written (returning a warning); StudyError, with the file untouched,
    when it is not an Optuna journal (text, binary, other JSON lines) or is damaged before its end."""
    from .journal import RECORD_START

    if not path.is_file():
        return None
    with open(path, "rb+") as f:
        data = f.read()
        if not data:
            return None
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for number, line in enumerate(lines, start=1):
            try:
                log = json.loads(line)
            except ValueError:
                log = None
                if number > 1:
                    raise StudyError(f"journal {path} is damaged at record {number} of {len(lines)} (not a whole "
                                     f"JSON record); restore it from a copy, or move it away to start the study "
                                     f"anew") from None
            if not isinstance(log, dict) or not isinstance(log.get("op_code"), int):
                raise StudyError(_not_a_journal(path, f"line {number} is not an Optuna journal record"))
        if not tail:
            return None
        if not (tail.startswith(RECORD_START) or RECORD_START.startswith(tail)):  # what a cut record looks like
            raise StudyError(_not_a_journal(path, "its last line is not an Optuna journal record"))
        f.truncate(len(data) - len(tail))
    return (f"journal {path}: its last record was cut off (a crash while writing?); read up to the last whole "
            f"record, {len(tail)} bytes dropped")


def _not_a_journal(path: Path, why: str) -> str:
    return f"{path} is not an Optuna journal ({why}); nothing was written to it: give --storage a journal or a new path"


def open_storage(url: str, warn: Optional[Callable[[str], None]] = None, *, read_only: bool = False):
    """An Optuna storage for a journal path or an SQLAlchemy URL; StudyError (password hidden) if it fails.

    `read_only` (reports, exports): an existing journal is read as it is, with no lock file, folder or repair,
    so a read-only `studies/` (a mounted copy, an archive) reads as Optuna's own `load_study` does."""
    import optuna

    if is_rdb(url):
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(url)
        except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError and friends
            raise StudyError(f"storage {redact(url)}: not a database URL (e.g. postgresql://user:pass@host/db)") from None
        if "@" in (parsed.host or "") + (parsed.database or ""):
            # SQLAlchemy parsed a raw '@' of the password as the end of the user info; the driver would print the
            # rest (part of the password) as the host
            raise StudyError(f"storage {redact(url)}: the password holds a raw '@'; write it as %40")
        try:
            with _schema_lock(url):  # concurrent first starts would race to create Optuna's tables
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        except Exception as e:  # noqa: BLE001 - driver errors come in many types
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StudyError(f"cannot open storage {redact(url)}: {redact(reason)}") from None
    from optuna.storages import JournalStorage

    from .journal import SnapshotJournal, flock, lock_path

    path = journal_path(url)
    if read_only:
        if not path.is_file():
            raise StudyError(f"no journal at {path} (give --storage?)")
        # Optuna creates the file only when it is missing, and reads a cut last record as absent
        return JournalStorage(SnapshotJournal(str(path), writable=False))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_suffix(".lock")), flock(lock_path(path)):  # no writer is mid-record meanwhile
            note = repair_journal(path)
        if note and warn is not None:
            warn(note)
        return JournalStorage(SnapshotJournal(str(path)))
    except OSError as e:
        raise StudyError(f"cannot open storage {path}: {e.strerror}") from None


@contextlib.contextmanager
def no_empty_journal(url: str) -> Iterator[None]:
    """If the block fails, remove the journal, lock files and studies folder that it created and left empty:
    a start refused by a check leaves nothing behind (a journal with any record is kept)."""
    if is_rdb(url):
        yield
        return
    from .journal import lock_path

    path = journal_path(url)
    made = [p for p in (path, path.with_suffix(".lock"), lock_path(path)) if not p.exists()]
    folder = path.parent if not path.parent.exists() else None
    try:
        yield
    except BaseException:
        for p in made:
            with contextlib.suppress(OSError):
                if p.is_file() and p.stat().st_size == 0:
                    p.unlink()
        if folder is not None:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise


def _file_lock(lock_path: Path):
    """The study-wide lock of a journal or single-machine database: an flock, dropped by the kernel when its holder
    dies."""
    from .journal import flock

    return flock(lock_path)


# one key for every nasx process on a server: Optuna's schema is per database, not per study
_SCHEMA_KEY = int.from_bytes(hashlib.sha256(b"nasx:optuna-schema").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _advisory_lock(engine: Any, key: int) -> Iterator[None]:
    """A PostgreSQL session advisory lock held on its own connection of `engine`."""
    import sqlalchemy

    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Serialize Optuna's table creation among processes opening one PostgreSQL database (a no-op elsewhere)."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with _advisory_lock(engine, _SCHEMA_KEY):
            yield
    finally:
        engine.dispose()


@contextlib.contextmanager
def study_lock(url: str, name: str, engine_cache: dict) -> Iterator[None]:
    """A lock shared by every worker of the study: PostgreSQL advisory lock, else a file lock."""
    if url.startswith("postgresql"):
        import sqlalchemy

        engine = engine_cache.get(url)
        if engine is None:
            engine = engine_cache[url] = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        key = int.from_bytes(hashlib.sha256(f"nasx:{name}".encode()).digest()[:8], "big", signed=True)
        with _advisory_lock(engine, key):
            yield
        return
    if is_rdb(url):  # sqlite or another single-machine URL: a lock file keyed by the URL
        lock_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nasx-{hashlib.sha256(url.encode()).hexdigest()[:16]}.lock"
    else:
        lock_path = journal_path(url).with_suffix(".lock")
    with _file_lock(lock_path):
        yield


def make_sampler(name: str, seed: int, worker_number: int):
    """Optuna sampler by name, on its own stream of the study seed: each worker that joins a study (at once or
    later, on a resume) has another number (`record.take_worker_number`), so none replays another's proposals."""
    import numpy as np
    import optuna

    stream = int(np.random.SeedSequence([seed, worker_number]).generate_state(1)[0])
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=stream, multivariate=True, group=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=stream)
    return optuna.samplers.NSGAIISampler(seed=stream, population_size=16)


def study_info(cfg: StudyConfig, space_hash: Optional[str]) -> StudyInfo:
    """What the study is made with, as compared on resume."""
    budget = cfg.budget if cfg.budget is not None and cfg.budget.whole else None
    return StudyInfo(space=cfg.space, dataset=cfg.dataset, budget=budget,
                     objectives=tuple(cfg.objectives), val_size=cfg.val_size, seed=cfg.seed,
                     space_hash=space_hash, corner=cfg.corner if cfg.corner != "none" else None,
                     rungs=tuple(b.to_dict() for b in cfg.rungs.budgets) if cfg.rungs else (),
                     eta=cfg.rungs.eta if cfg.rungs else None, continuation=bool(cfg.continuation and cfg.rungs))


def open_study(cfg: StudyConfig, storage: Any, space_hash: Optional[str] = None):
    """Create the study, or load it and check it was made with the same space (by content), dataset and budget.

    Its sampler is stream 0 of the study seed; a worker takes its own stream (`make_sampler`) before asking."""
    import optuna

    directions = ["maximize" if OBJECTIVES[o] else "minimize" for o in cfg.objectives]
    info = study_info(cfg, space_hash)
    with study_lock(cfg.storage_url, cfg.name, {}):  # processes started together: one creates, the others check
        study = optuna.create_study(study_name=cfg.name, storage=storage, directions=directions, load_if_exists=True,
                                    sampler=make_sampler(cfg.sampler, cfg.seed, 0))
        stored = read_info(study)
        if stored is None:
            write_info(study, info, cfg.to_dict())
    if stored is not None:
        changed = info.differences(stored)
        if changed:
            key, theirs, mine = changed[0]
            if key == "space_hash":
                raise StudyError(f"study {cfg.name!r} was made from another version of the space file {cfg.space!r} "
                                 f"(content {theirs}, now {mine}); use another --study name, or restore the file")
            shown = {k: v.name if isinstance(v, Budget) else repr(v) for k, v in (("theirs", theirs), ("mine", mine))}
            raise StudyError(f"study {cfg.name!r} was made with {key}={shown['theirs']}, not {shown['mine']}; "
                             f"use another --study name or the same settings to resume it")
    if [d.name.lower() for d in study.directions] != directions:
        raise StudyError(f"study {cfg.name!r} has other objectives; use another --study name")
    return study


def load_existing(name: str, url: str, opened: Any = None):
    """The stored study `name` at `url` (never created here), read through `opened` when given (a storage already
    open on `url`: another study of the same journal is not read again); StudyError naming the storage if it is not
    there."""
    import optuna

    from .config import redact

    if opened is None and not is_rdb(url) and not journal_path(url).is_file():
        raise StudyError(f"unknown study {name!r}: no storage at {journal_path(url)} (give --storage?)")
    try:
        return optuna.load_study(study_name=name, storage=opened or open_storage(url, read_only=True))
    except KeyError:
        raise StudyError(f"unknown study {name!r} in {redact(url)}") from None
