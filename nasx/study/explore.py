"""The main job as one call: run (or resume) a study of a space, then its zoo references on the same proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..space.sampling import default_band
from .config import StudyConfig, study_space
from .progress import Snapshot
from .record import Shelf
from .references import reference_nets, references_config, run_references
from .run import RunSummary, run_study
from .storage import no_empty_journal

__all__ = ["Exploration", "explore"]


@dataclass
class Exploration:
    """What `explore` did: the study's run and, unless turned off or interrupted, its references' run."""

    study: RunSummary
    references: Optional[RunSummary]
    reference_study: Optional[str]  # the companion study's name, where references were trained
    repeats: Optional[Any] = None  # nasx.study.repeat.RepeatRun, with --repeats K

    @property
    def interrupted(self) -> bool:
        return (self.study.interrupted or bool(self.references and self.references.interrupted)
                or bool(self.repeats and self.repeats.interrupted))


def explore(cfg: StudyConfig, *, references: bool = True, progress: Callable[[Snapshot], None] | None = None,
            on_note: Optional[Callable[[str], None]] = None, train_fn: Optional[Callable] = None,
            repeats: int = 0) -> Exploration:
    """Run the study; then (repeats K > 0) train its front and the nets within seed noise of it under K more seeds
    (nasx.study.repeat); then train the zoo nets that fit its input in or near its band under the same proxy,
    seed and split (each once per study), so the report can draw them as measured points."""
    from .. import data as nasx_data
    from .repeat import RepeatError, repeat

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 0:
        raise RepeatError(f"--repeats {repeats!r}: must be a whole number >= 0 (0: no repeats)")
    with no_empty_journal(cfg.storage_url):  # a start refused by a check leaves no empty journal behind
        summary = run_study(cfg, progress=progress, on_note=on_note, train_fn=train_fn)
    if summary.interrupted or summary.config.fixed:
        return Exploration(summary, None, None)
    done = summary.config
    again = None
    if repeats:
        try:
            again = repeat(done.name, repeats, shelf=Shelf(done.storage_url), settings=done.to_dict(),
                           device=done.device, workers=done.workers, threads=done.threads, progress=progress,
                           on_note=on_note, train_fn=train_fn)
        except RepeatError as e:  # nothing to repeat (no complete trial): the study and its references stand
            if on_note is not None:
                on_note(f"no repeats: {e}")
        if again is not None and again.interrupted:
            return Exploration(summary, None, None, again)
    if not references:
        return Exploration(summary, None, None, again)
    band = default_band(study_space(done), done.flops)
    shape = nasx_data.input_shape(done.dataset, data_dir=done.data_dir, download=done.download)
    nets = reference_nets(shape, band)
    side = done.budget.resolution
    if side is not None:  # a zoo net whose grid collapses at the proxy side would only fail
        from ..net.fit import smallest_side

        dropped = [name for name, spec in nets if smallest_side(spec, shape.resolution) > side]
        if dropped and on_note is not None:
            on_note(f"zoo net(s) {', '.join(dropped)} left out as references: they collapse at the proxy's "
                    f"{side} px")
        nets = [(name, spec) for name, spec in nets if name not in dropped]
    if not nets:
        return Exploration(summary, None, None, again)
    if on_note is not None:
        on_note(f"training {len(nets)} zoo net(s) on the same proxy as references: "
                f"{', '.join(name for name, _ in nets)} (--no-references turns this off)")
    refs = run_references(done, nets, progress=progress, on_note=on_note, train_fn=train_fn)
    return Exploration(summary, refs, references_config(done).name, again)
