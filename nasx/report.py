"""Reports of stored studies: trial tables, Pareto tables, zoo references and one HTML page.

`write_report` reads the studies (never trains), writes `trials.csv`, `pareto.csv`, `zoo.csv`, the
figures (`nasx.report_figures`, PNG and SVG) and `index.html`, which opens from disk with the
figures beside it.
"""

from __future__ import annotations

import datetime
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .analysis import pareto_mask
from .study import StudyError, is_rdb, journal_path, open_storage, redact

__all__ = ["ReportError", "StudyData", "ZooRef", "load_study", "trials_table", "pareto_table", "zoo_references",
           "best_trial", "write_report", "default_out"]

# trial user attributes copied into the table, in this order
COLUMNS = ("spec_id", "description", "flops", "params", "acts", "val_acc", "test_acc", "epochs_run", "wall_time",
           "images_per_s", "seed", "duplicate_of", "prune_reason", "fail_reason", "rejected")


class ReportError(StudyError):
    """A study that cannot be reported (unknown, empty, all failed), said in one line."""


@dataclass
class StudyData:
    """One stored study: its settings, its trials as a table, and the Optuna study (for importances)."""

    name: str
    storage: str  # redacted
    info: dict[str, Any]
    trials: Any  # pandas.DataFrame, one row per trial
    study: Any = field(repr=False, default=None)

    @property
    def complete(self):
        return self.trials[self.trials["state"] == "COMPLETE"]


@dataclass(frozen=True)
class ZooRef:
    """A zoo net at the study's input: its counts there and its accuracy if nasx measured it on the same proxy."""

    name: str
    spec_id: str
    flops: int
    params: int
    val_acc: Optional[float] = None
    measured_in: str = ""  # "study #trial" where the accuracy comes from


def storage_for(name: str, storage: Optional[str], studies_dir: str | Path = "studies") -> str:
    """The storage URL of a study: the one given, else studies/<name>.journal."""
    return storage or str(Path(studies_dir) / f"{name}.journal")


def load_study(name: str, storage: Optional[str] = None, studies_dir: str | Path = "studies") -> StudyData:
    """Read a stored study into a StudyData; ReportError if there is no such study."""
    import optuna

    url = storage_for(name, storage, studies_dir)
    if not is_rdb(url) and not journal_path(url).is_file():
        raise ReportError(f"unknown study {name!r}: no storage at {journal_path(url)} (give --storage?)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ReportError(f"unknown study {name!r} in {redact(url)}") from None
    return StudyData(name=name, storage=redact(url), info=dict(study.user_attrs.get("nasx", {})),
                     trials=trials_table(study.get_trials(deepcopy=False), name), study=study)


def trials_table(trials: Sequence[Any], study: str = ""):
    """One row per trial: study, number, state, the recorded attributes, the curve (JSON) and `param_<name>`."""
    import pandas as pd

    rows = []
    for t in trials:
        a = t.user_attrs
        row: dict[str, Any] = {"study": study, "number": t.number, "state": t.state.name}
        for key in COLUMNS:
            row[key] = a.get(key)
        curve = a.get("curve") or []
        row["last_val_acc"] = curve[-1] if curve else None
        row["curve"] = json.dumps([round(float(c), 6) for c in curve])
        for key in sorted(k for k in a if k.startswith("tag_")):
            row[key] = a[key]
        for key, value in sorted(t.params.items()):
            row[f"param_{key}"] = value
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["study", "number", "state", *COLUMNS, "last_val_acc", "curve"])
    for key in ("number", "flops", "params", "acts", "epochs_run", "seed", "duplicate_of"):
        df[key] = df[key].astype("Int64")  # whole numbers stay whole beside the missing ones
    df["pareto"] = False
    done = df["state"] == "COMPLETE"
    if done.any():
        sub = df[done]
        mask = pareto_mask(list(zip(sub["val_acc"].astype(float), sub["flops"].astype(float))), (True, False))
        df.loc[sub.index, "pareto"] = mask
    return df


def pareto_table(trials) -> Any:
    """The Pareto-optimal complete trials (accuracy up, FLOPs down), one row per architecture, by FLOPs."""
    done = trials[trials["state"] == "COMPLETE"]
    if done.empty:
        return done
    mask = pareto_mask(list(zip(done["val_acc"].astype(float), done["flops"].astype(float))), (True, False))
    front = done[mask].sort_values(["flops", "number"])
    return front.drop_duplicates(subset=["spec_id"], keep="first")  # duplicates of one net: its first trial


def check_reportable(data: StudyData) -> None:
    """ReportError if the study has nothing to report."""
    t = data.trials
    if t.empty:
        raise ReportError(f"study {data.name} has no trials yet")
    if (t["state"] == "COMPLETE").any():
        return
    failed = t[t["state"] == "FAIL"]
    trained = t[t["rejected"].isna() & (t["state"] != "WAITING")]  # structures the space rejected never trained
    if len(failed) and len(failed) == len(trained):
        reason = failed["fail_reason"].dropna()
        why = f" (first: {reason.iloc[0]})" if len(reason) else ""
        raise ReportError(f"study {data.name}: all {len(failed)} trials failed{why}")
    raise ReportError(f"study {data.name} has no complete trials yet")


def study_input(data: StudyData) -> dict[str, int]:
    """Resolution, channels and classes of the study's nets (from the first trial that holds a spec)."""
    for t in data.study.get_trials(deepcopy=False) if data.study is not None else ():
        raw = t.user_attrs.get("spec")
        if raw:
            return {"resolution": int(raw.get("resolution", 32)), "in_channels": int(raw.get("in_channels", 3)),
                    "num_classes": int(raw.get("num_classes", 10))}
    return {}


def zoo_references(shape: dict[str, int], measured: Sequence[Any] = ()) -> list[ZooRef]:
    """The zoo nets of the family that fits the input (CIFAR nets below 100 px, else ImageNet), counted at it;
    accuracy only from `measured` trial tables (mean val_acc of complete trials with the same spec id)."""
    from .net.complexity import complexity
    from .net.spec import SpecError
    from .net.zoo import ZOO

    if not shape:
        return []
    family = "cifar" if shape["resolution"] < 100 else "imagenet"
    refs = []
    for name, entry in ZOO.items():
        if entry.dataset != family:
            continue
        try:
            spec = entry.make().replace(**shape)
            cx = complexity(spec)
        except SpecError:
            continue  # does not fit this input
        acc, where = None, ""
        for table in measured:
            hit = table[(table["state"] == "COMPLETE") & (table["spec_id"] == spec.id)]
            if len(hit):
                acc = float(hit["val_acc"].mean())
                where = ", ".join(f"{s} #{n}" for s, n in zip(hit["study"], hit["number"]))
                break
        refs.append(ZooRef(name, spec.id, cx.flops, cx.params, acc, where))
    return sorted(refs, key=lambda r: r.flops)


def best_trial(trials, max_flops: Optional[float] = None):
    """The most accurate complete trial (under max_flops when given) as a table row, or None."""
    done = trials[trials["state"] == "COMPLETE"]
    if max_flops is not None:
        done = done[done["flops"].astype(float) <= max_flops]
    if done.empty:
        return None
    return done.sort_values(["val_acc", "flops", "number"], ascending=[False, True, True]).iloc[0]


def default_out(studies: Sequence[str]) -> Path:
    """reports/<study>/ for one study, reports/<a>+<b>/ for several."""
    return Path("reports") / "+".join(studies)


def commands(data: StudyData, number: int, storage_default: bool) -> str:
    """The commands that export a trial's net and train it on the study's proxy budget."""
    storage = "" if storage_default else f" --storage {data.storage}"
    info = data.info
    return (f"nasx export {data.name} --trial {number} --out net.yaml{storage} && "
            f"nasx train net.yaml --dataset {info.get('dataset', 'cifar10')} --epochs {info.get('epochs', 1)}")


# ---------------------------------------------------------------------------------------------
# The page


def write_report(studies: list[str], storage: str | None = None, out: str | Path | None = None,
                 studies_dir: str | Path = "studies", references: Sequence[str] = ()) -> Path:
    """Write the report of one or more studies (and zoo accuracies from `references` studies); return index.html."""
    import pandas as pd

    from . import report_figures as figs

    if not studies:
        raise ReportError("no study given")
    datas = [load_study(name, storage, studies_dir) for name in studies]
    for data in datas:
        check_reportable(data)
    refs_data = [load_study(name, storage, studies_dir) for name in references]
    for ref in refs_data:
        for key in ("dataset", "epochs", "fraction", "val_size"):
            if ref.info.get(key) != datas[0].info.get(key):
                raise ReportError(f"reference study {ref.name}: {key}={ref.info.get(key)!r} differs from "
                                  f"{datas[0].name}'s {datas[0].info.get(key)!r}: not the same proxy")
    out = Path(out) if out is not None else default_out(studies)
    out.mkdir(parents=True, exist_ok=True)

    trials = pd.concat([d.trials for d in datas], ignore_index=True)
    trials.to_csv(out / "trials.csv", index=False)
    fronts = {d.name: pareto_table(d.trials) for d in datas}
    default = storage is None or all(storage == storage_for(n, None, studies_dir) for n in studies)
    front_rows = []
    for d in datas:
        for _, row in fronts[d.name].iterrows():
            front_rows.append({"study": d.name, "trial": int(row["number"]), "spec_id": row["spec_id"],
                               "description": row["description"], "flops": int(row["flops"]),
                               "params": int(row["params"]), "val_acc": float(row["val_acc"]),
                               "command": commands(d, int(row["number"]), default)})
    pd.DataFrame(front_rows).to_csv(out / "pareto.csv", index=False)
    zoo = zoo_references(study_input(datas[0]), [d.trials for d in datas] + [r.trials for r in refs_data])
    pd.DataFrame([r.__dict__ for r in zoo]).to_csv(out / "zoo.csv", index=False)

    figures = figs.all_figures(datas, zoo, out)
    page = render(datas, front_rows, zoo, figures)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _fmt(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}code{font-size:0.85em}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:0.9em}.note{color:#8a5a00}"""


def render(datas: Sequence[StudyData], front_rows, zoo: Sequence[ZooRef], figures) -> str:
    """The HTML page."""
    e = html.escape
    names = ", ".join(d.name for d in datas)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>nasx report: {e(names)}</title>"
             f"<style>{STYLE}</style></head><body><h1>nasx report: {e(names)}</h1>",
             f"<p>Written {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}. Accuracy is validation accuracy "
             f"on the proxy budget; FLOPs are counted analytically (one multiply-add = one flop).</p>"]
    rows = []
    for d in datas:
        counts = d.trials["state"].value_counts().to_dict()
        rejected = int(d.trials["rejected"].notna().sum())
        i = d.info
        rows.append([e(d.name), e(str(i.get("space", "?"))), e(str(i.get("dataset", "?"))), str(i.get("epochs", "?")),
                     str(i.get("fraction", "?")), str(counts.get("COMPLETE", 0)), str(counts.get("PRUNED", 0) - rejected),
                     str(rejected), str(counts.get("FAIL", 0)), f"<code>{e(d.storage)}</code>"])
    parts.append("<h2>Studies</h2>" + _table(["study", "space", "dataset", "epochs", "fraction", "complete", "pruned",
                                              "rejected structures", "failed", "storage"], rows))
    parts.append("<h2>Pareto-optimal architectures</h2><p>Non-dominated in (validation accuracy &uarr;, FLOPs "
                 "&darr;); also in <a href='pareto.csv'>pareto.csv</a>. Every trial: <a href='trials.csv'>trials.csv</a>.</p>")
    parts.append(_table(["study", "trial", "spec id", "architecture", "FLOPs", "params", "val acc", "export and train"],
                        [[e(r["study"]), str(r["trial"]), f"<code>{e(r['spec_id'])}</code>", e(r["description"]),
                          _fmt(r["flops"]), _fmt(r["params"]), f"{100 * r['val_acc']:.2f}%",
                          f"<code>{e(r['command'])}</code>"] for r in front_rows]))
    for fig in figures:
        if fig.file:
            parts.append(f"<figure id='{e(fig.stem)}'><h3>{e(fig.title)}</h3><img src='{e(fig.file)}' alt='{e(fig.title)}'>"
                         f"<figcaption>{e(fig.caption)} (<a href='{e(fig.stem)}.svg'>SVG</a>)</figcaption></figure>")
        else:
            parts.append(f"<h3>{e(fig.title)}</h3><p class='note'>{e(fig.caption)}</p>")
    parts.append("<h2>Zoo references</h2><p>Classic nets of the zoo at this input, counted analytically; an accuracy "
                 "only where nasx measured the same net on the same proxy (never copied from papers). "
                 "<a href='zoo.csv'>zoo.csv</a></p>")
    parts.append(_table(["net", "spec id", "FLOPs", "params", "val acc (measured)"],
                        [[e(z.name), f"<code>{z.spec_id}</code>", _fmt(z.flops), _fmt(z.params),
                          f"{100 * z.val_acc:.2f}% ({e(z.measured_in)})" if z.val_acc is not None else "not measured"]
                         for z in zoo]))
    parts.append("</body></html>")
    return "\n".join(parts)

