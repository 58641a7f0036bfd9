"""The report page of stored studies, and the one HTML style every nasx page uses.

`write_report` reads the studies (never trains), writes `trials.csv`, `pareto.csv`, `zoo.csv`,
`hv_vs_compute.csv`, the figures (SVG) and `index.html`, which opens from disk with the figures beside it. A study in any
state gets a page: what cannot be drawn yet (no complete trial, too few for an EDF, studies of different
datasets) is said on the page instead.
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path
from typing import Any, Optional, Sequence

from ..study.record import COMPLETE, FAIL, PRUNED, RUNNING, Shelf
from ..units import human
from .tables import (ReportError, StudyData, ZooRef, hv_vs_compute, pareto_table, study_input,
                     zoo_references)

__all__ = ["write_report", "render", "default_out", "html_page", "html_table", "STYLE"]

STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}code{font-size:0.85em}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:0.9em}.note{color:#8a5a00}.verdict{font-size:1.1em;font-weight:600}"""


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table; header cells are escaped here, body cells are HTML already."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(title: str, parts: Sequence[str]) -> str:
    """A whole page in the nasx style: title, the date it was written, then the parts (HTML)."""
    e = html.escape
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
                      f"<style>{STYLE}</style></head><body><h1>{e(title)}</h1>",
                      f"<p>Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.</p>", *parts,
                      "</body></html>"])


def figure_html(fig: Any) -> str:
    e = html.escape
    if fig.file:
        # the same figure in the other formats: a study page's `also`; the other pages write an SVG beside a PNG
        others = getattr(fig, "also", ()) or ((f"{fig.stem}.svg",) if fig.file.endswith(".png") else ())
        links = ", ".join(f"<a href='{e(f)}'>{e(f.rpartition('.')[2].upper())}</a>" for f in others)
        svg = f" ({links})" if links else ""
        return (f"<figure id='{e(fig.stem)}'><h3>{e(fig.title)}</h3><img src='{e(fig.file)}' alt='{e(fig.title)}'>"
                f"<figcaption>{e(fig.caption)}{svg}</figcaption></figure>")
    return f"<h3>{e(fig.title)}</h3><p class='note'>{e(fig.caption)}</p>"


def default_out(studies: Sequence[str]) -> Path:
    """reports/<study>/ for one study, reports/<a>+<b>/ for several."""
    return Path("reports") / "+".join(studies)


def commands(data: StudyData, number: int, storage_default: bool) -> str:
    """The commands that export a trial's net and train it on the study's proxy budget."""
    storage = "" if storage_default else f" --storage {data.storage}"
    info = data.info
    dataset = info.dataset if info else "cifar10"
    epochs = info.budget.epochs if info and info.budget else 1
    return (f"nasx export {data.name} --trial {number} --out net.yaml{storage} && "
            f"nasx train net.yaml --dataset {dataset} --epochs {epochs}")


def notes_for(datas: Sequence[StudyData]) -> list[str]:
    """What the page cannot show, and why: said on the page rather than failing."""
    notes = []
    for d in datas:
        states = d.trials["state"].value_counts().to_dict() if len(d.trials) else {}
        if not len(d.trials):
            notes.append(f"Study {d.name} has no trials yet: nothing to chart.")
        elif not states.get(COMPLETE):
            failed = d.trials[d.trials["state"] == FAIL]["fail_reason"].dropna()
            why = f" (first failure: {failed.iloc[0]})" if len(failed) else ""
            notes.append(f"Study {d.name} has no complete trial yet ({', '.join(f'{v} {k.lower()}' for k, v in states.items())})"
                         f"{why}: no front, accuracies or EDF.")
        elif states.get(COMPLETE) == 1:
            notes.append(f"Study {d.name} has one complete trial: its front is that one point.")
        if states.get(RUNNING):
            notes.append(f"Study {d.name} has {states[RUNNING]} trial(s) still running (or left running by a "
                         f"stopped worker): they are not in the charts until they complete.")
    datasets = {d.info.dataset for d in datas if d.info}
    if len(datasets) > 1:
        notes.append(f"These studies use different datasets ({', '.join(sorted(datasets))}): their accuracies are not "
                     f"comparable; zoo references are counted at the first study's input.")
    return notes


def proxy_text(d: StudyData) -> str:
    """The proxy budget the study trained its nets on, in words."""
    i = d.info
    if i is None:
        return "unknown (not a nasx study)"
    val = f"{int(i.val_size):,} images" if i.val_size and i.val_size >= 1 else f"{i.val_size:.0%} of the training split" \
        if i.val_size else "?"
    budget = i.budget
    parts = [budget.describe() if budget else "?",
             f"validation on {val} held out of the training split (the test split is not used)"]
    if budget and budget.resolution:
        parts.append("images resized to the proxy side; FLOPs are the net's at the data's side")
    return "; ".join(parts)


def rungs_text(d: StudyData) -> Optional[str]:
    """How many nets each rung of a study with rungs trained, and its eta; None for a study without rungs."""
    i = d.info
    if i is None or not i.rungs:
        return None
    t = d.trials
    trained = t[t["state"].isin((COMPLETE, PRUNED, FAIL)) & t["rejected"].isna()] if len(t) else t
    counts = trained["rung"].value_counts().to_dict() if len(trained) else {}
    names = [b.name for b in i.ladder.budgets] if i.ladder else ["?"] * len(i.rungs)
    parts = [f"rung {k} ({name}): {int(counts.get(k, 0))} net{'s' if counts.get(k, 0) != 1 else ''}"
             for k, name in enumerate(names)]
    return (f"Study {d.name} trains in {len(i.rungs)} rungs (successive halving, eta {i.eta}: a rung promotes the "
            f"top 1/{i.eta} of its nets): {'; '.join(parts)}. The front, the charts' dots, the summary and the "
            f"hypervolume use the top rung's results only.")


def read_studies(names: Sequence[str], shelf: Shelf) -> list[StudyData]:
    """The stored studies `names` on the shelf (StudyError naming the one that is not there)."""
    from ..study.store import open_study

    return [open_study(name, shelf.url(name)) for name in names]


def write_report(studies: Sequence[str], shelf: Shelf = Shelf(), out: str | Path | None = None,
                 references: Sequence[str] = (), formats: Sequence[str] | None = None) -> Path:
    """Write the report of one or more studies on the shelf (and zoo accuracies from `references` studies), each figure
    once per format (default: figures.STUDY_FORMATS, SVG; the page shows the first and links the others); return
    index.html. StudyError names a study that is not there."""
    import pandas as pd

    from . import figures as figs

    if not studies:
        raise ReportError("no study given")
    datas = read_studies(studies, shelf)
    refs_data = read_studies(references, shelf)
    for ref in refs_data:
        for key in ("dataset", "epochs", "fraction", "val_size"):
            mine, theirs = getattr(ref.info, key, None), getattr(datas[0].info, key, None)
            if mine != theirs:
                raise ReportError(f"reference study {ref.name}: {key}={mine!r} differs from "
                                  f"{datas[0].name}'s {theirs!r}: not the same proxy")
    out = Path(out) if out is not None else default_out(studies)
    out.mkdir(parents=True, exist_ok=True)

    trials = pd.concat([d.trials for d in datas], ignore_index=True)
    trials.to_csv(out / "trials.csv", index=False)
    default = shelf.storage is None or all(shelf.storage == Shelf(None, shelf.folder).url(n) for n in studies)
    front_rows = []
    for d in datas:
        for _, row in pareto_table(d.trials).iterrows():
            front_rows.append({"study": d.name, "trial": int(row["number"]), "spec_id": row["spec_id"],
                               "description": row["description"], "flops": int(row["flops"]),
                               "params": int(row["params"]), "val_acc": float(row["val_acc"]),
                               "command": commands(d, int(row["number"]), default)})
    pd.DataFrame(front_rows, columns=["study", "trial", "spec_id", "description", "flops", "params", "val_acc",
                                      "command"]).to_csv(out / "pareto.csv", index=False)
    zoo = zoo_references(study_input(datas[0]), [d.trials for d in datas] + [r.trials for r in refs_data])
    pd.DataFrame([r.__dict__ for r in zoo], columns=list(ZooRef.__dataclass_fields__)).to_csv(out / "zoo.csv",
                                                                                             index=False)
    curves = [hv_vs_compute(d) for d in datas]
    hv_rows = [c.rows for c in curves if c is not None]
    (pd.concat(hv_rows, ignore_index=True) if hv_rows else
     pd.DataFrame(columns=["study", "trial", "state", "rung", "completed", "wall_time", "compute", "hypervolume"])
     ).to_csv(out / "hv_vs_compute.csv", index=False)
    figures = figs.all_figures(datas, zoo, out, curves, formats=figs.STUDY_FORMATS if formats is None else formats)
    from .repeats import repeats_sections  # the nets repeated under more seeds (nasx repeat), where a study has them

    repeats = repeats_sections(datas, out)
    index = out / "index.html"
    index.write_text(render(datas, front_rows, zoo, figures, repeats=repeats), encoding="utf-8")
    return index


def render(datas: Sequence[StudyData], front_rows: Sequence[dict], zoo: Sequence[ZooRef], figures: Sequence[Any],
           notes: Optional[Sequence[str]] = None, repeats: Sequence[Any] = ()) -> str:
    """The HTML page of studies."""
    e = html.escape
    names = ", ".join(d.name for d in datas)
    parts = ["<p>Accuracy is validation accuracy on the proxy budget below; FLOPs are those of the net as it is "
             "deployed at the study's input, counted analytically (one multiply-add = one flop).</p>"]
    for note in notes if notes is not None else notes_for(datas):
        parts.append(f"<p class='note'>{e(note)}</p>")
    for line in filter(None, map(rungs_text, datas)):
        parts.append(f"<p>{e(line)}</p>")
    rows = []
    for d in datas:
        states = d.trials["state"].value_counts().to_dict() if len(d.trials) else {}
        rejected = int(d.trials["rejected"].notna().sum()) if len(d.trials) else 0
        i = d.info
        space = (i.space + (f" (corner {i.corner})" if i.corner else "")) if i else "?"
        rows.append([e(d.name), e(space), e(i.dataset if i else "?"), e(proxy_text(d)),
                     str(states.get(COMPLETE, 0)), str(states.get(PRUNED, 0) - rejected), str(rejected),
                     str(states.get(FAIL, 0)), str(states.get(RUNNING, 0)), f"<code>{e(d.storage)}</code>"])
    parts.append("<h2>Studies</h2>" + html_table(["study", "space", "dataset", "proxy", "complete", "pruned",
                                                  "rejected structures", "failed", "running", "storage"], rows))
    parts.append("<h2>Pareto-optimal architectures</h2><p>Non-dominated in (validation accuracy &uarr;, FLOPs "
                 "&darr;); also in <a href='pareto.csv'>pareto.csv</a>. Every trial: <a href='trials.csv'>trials.csv</a>.</p>")
    if front_rows:
        parts.append(html_table(["study", "trial", "spec id", "architecture", "FLOPs", "params", "val acc",
                                 "export and train"],
                                [[e(r["study"]), str(r["trial"]), f"<code>{e(r['spec_id'])}</code>", e(r["description"]),
                                  human(r["flops"]), human(r["params"]), f"{100 * r['val_acc']:.2f}%",
                                  f"<code>{e(r['command'])}</code>"] for r in front_rows]))
    else:
        parts.append("<p class='note'>No complete trial yet, so no front.</p>")
    parts.extend(figure_html(fig) for fig in figures)
    for r in repeats:  # nasx.report.repeats.RepeatsSection
        parts.append(f"<h2>{e(r.title)}</h2><p>{e(r.text)}</p>{figure_html(r.figure)}{html_table(r.header, r.rows)}")
    parts.append("<h2>Zoo references</h2><p>Classic nets of the zoo at this input, counted analytically; an accuracy "
                 "only where nasx measured the same net on the same proxy (never copied from papers). "
                 "<a href='zoo.csv'>zoo.csv</a></p>")
    parts.append(html_table(["net", "spec id", "FLOPs", "params", "val acc (measured)"],
                            [[e(z.name), f"<code>{z.spec_id}</code>", human(z.flops), human(z.params),
                              f"{100 * z.val_acc:.2f}% ({e(z.measured_in)})" if z.val_acc is not None else "not measured"]
                             for z in zoo]))
    return html_page(f"nasx report: {names}", parts)
