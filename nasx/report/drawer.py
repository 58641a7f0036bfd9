"""A figure process started before matplotlib is imported: it imports matplotlib while the report reads the
study, then draws its share of the page's figures from the tables it is sent.

On two cores a 1,000-trial report spent about half its time importing matplotlib, Optuna and pandas and reading
the study on one core before any figure was drawn. Forked at the start of `write_report`, the drawer imports
matplotlib and the figures module on the other core meanwhile; the report sends it the studies' tables (not the
Optuna studies: the importance jobs stay with the report), the zoo and the hypervolume curves; it draws the jobs
it is given, writes their files and sends their Figures back. A drawer that fails (or a platform without fork)
costs nothing: its share is drawn by the report itself.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import threading
from typing import Any, Optional, Sequence

__all__ = ["Drawer", "HEAD_START"]

HEAD_START = 1.3  # the drawer's head start, in job-cost units (~0.4 s each): it is ready while the report imports


class Drawer:
    """A forked child waiting for figure jobs (see the module's docstring); `Drawer.start()` gives None where it
    cannot run (not Linux, another thread running, one usable core)."""

    def __init__(self, pid: int, to_child: int, from_child: int):
        self.pid, self._to, self._from = pid, to_child, from_child
        self._open = {to_child, from_child}  # the pipe ends this process still holds
        self._waited = False

    @classmethod
    def start(cls) -> Optional["Drawer"]:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if not sys.platform.startswith("linux") or threading.active_count() != 1 or cores < 2:
            return None
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(down_w)
            os.close(up_r)
            _serve(down_r, up_w)  # never returns
        os.close(down_r)
        os.close(up_w)
        return cls(pid, down_w, up_r)

    @staticmethod
    def share(jobs: Sequence[tuple[float, bool, Any]], workers: int) -> list[int]:
        """The jobs the drawer takes: those that need no Optuna study, largest first, until it holds its part of
        the work plus its head start (the report's processes take the rest)."""
        total = sum(cost for cost, _, _ in jobs)
        target = (total + HEAD_START * max(1, workers - 1)) / max(2, workers)
        taken, load = [], 0.0
        for i in sorted(range(len(jobs)), key=lambda i: -jobs[i][0]):
            cost, needs_study, _ = jobs[i]
            if not needs_study and load + cost <= target + 1e-9:
                taken.append(i)
                load += cost
        return sorted(taken)

    def send(self, datas: Sequence[Any], zoo: Sequence[Any], out: Any, curves: Sequence[Any],
             share: Sequence[int]) -> None:
        """Hand the drawer its jobs: the studies without their Optuna objects, the zoo, the folder, the curves."""
        light = [dataclasses.replace(d, study=None, opened=None) for d in datas]
        payload = pickle.dumps((light, list(zoo), out, list(curves), list(share)))
        self._open.discard(self._to)
        try:
            with os.fdopen(self._to, "wb") as pipe:
                pipe.write(payload)
        except OSError:  # a drawer that died: `collect` gives None and the report draws the share
            pass

    def collect(self) -> Optional[dict[int, list]]:
        """{job index: Figures} from the drawer, or None if it failed."""
        try:
            self._open.discard(self._from)
            with os.fdopen(self._from, "rb") as pipe:
                payload = pipe.read()
            self._wait()
            return pickle.loads(payload)
        except Exception:  # noqa: BLE001 - a drawer that died or sent nothing: the report draws its share
            return None

    def close(self) -> None:
        """Let go of the drawer whatever state it is in: closing the pipes makes it leave (a drawer given nothing
        reads an empty payload; one still drawing fails to send), then it is waited for."""
        for fd in list(self._open):
            self._open.discard(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        self._wait()

    def _wait(self) -> None:
        if not self._waited:
            self._waited = True
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


def _serve(down: int, up: int) -> None:
    """The drawer: import the figures module, wait for the jobs, draw them, send the Figures, leave at once."""
    code = 1
    try:
        from . import figures as figs  # matplotlib, while the parent reads the study

        with os.fdopen(down, "rb") as pipe:
            payload = pipe.read()
        if payload:  # empty: the report ended before its figures
            datas, zoo, out, curves, share = pickle.loads(payload)
            jobs = figs.page_jobs(datas, zoo, out, curves)
            import matplotlib

            with matplotlib.rc_context(figs.RC):
                result = {i: jobs[i][2]() for i in share}
            with os.fdopen(up, "wb") as pipe:
                pipe.write(pickle.dumps(result))
        code = 0
    finally:
        os._exit(code)
