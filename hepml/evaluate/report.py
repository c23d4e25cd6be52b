"""``hepml report``: every task's ``metrics.json`` and plots on one self-contained HTML page.

::

    hepml report --config FILE --input results/evaluate/TASK/metrics.json... --out report/index.html

An input is a ``metrics.json`` (or the directory holding one); the task's name
is that directory's name. The page has a title with the config's seed and the
date, then per task: each ROC as a table (method, AUC with its 95% bootstrap
interval, background efficiency and rejection at each signal efficiency, the
signal and background counts), the task-specific blocks as tables, and every
PNG of the task's directory, embedded as base64 with a caption. Nothing is
fetched from elsewhere: the page reads offline.

An input whose ``metrics.json`` has a ``section`` key (a string: the heading)
is a section of its own rather than a task, e.g. ``hepml compare-real``'s
"Simulation against real TrackML" and ``hepml real-trackml``'s "Real TrackML":
it needs neither ``network`` nor ``rocs`` and is rendered with the same blocks
and plots. Such a section may lay out its row tables with an optional
``"tables": {block: {"title": heading, "row_header": first column's heading,
"row_label": the row's key whose value names the row (instead of the row's
name), "columns": {key: heading}}}`` (only those columns, in that order).

Rendering of the task-specific blocks (every key but ``network``, ``rocs``,
``section``, ``tables`` and ``plots``):

* numbers, strings and short lists at the top level: one "summary" table;
* ``{"labels": [...], "matrix": [[...]]}``: a confusion matrix (rows: true
  class, columns: predicted class);
* ``{row: {column: value}}`` (e.g. ``"tracking": {method: {trackml_score, ...}}``):
  one table, a row per key;
* ``{key: value}``: a two-column table; deeper nesting: a sub-heading per key.

A true/false value is marked in every table (a green "yes", a red "no"), as
in an in-band/out-of-band column.

Captions come from the optional ``"plots": {"file.png": "caption"}`` block of
``metrics.json`` (``roc.png`` first, then that block's order, then the other
PNGs alphabetically, captioned by their file name). Every string taken from a
file is HTML-escaped.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepml import config
from hepml.errors import HepmlError
from hepml.evaluate.roc import read_metrics
from hepml.io import atomic_write_text

RESERVED = ("network", "rocs", "plots", "section", "tables")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d232a;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; line-height: 1.45; }
h1 { margin-bottom: 0.1em; }
h2 { border-bottom: 2px solid #3b6ea8; padding-bottom: 0.15em; margin-top: 2.2em; }
h3 { margin-bottom: 0.3em; color: #2c4f78; }
.meta, .note { color: #5a6570; font-size: 0.92em; }
nav a { margin-right: 1.2em; }
table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th { background: #eef2f6; }
td.name, th.name { text-align: left; font-weight: 600; }
tbody tr:nth-child(even) { background: #f8f9fa; }
.ci { color: #5a6570; font-size: 0.88em; }
.best { font-weight: 700; color: #1a5e20; }
td.yes { color: #1a5e20; }
td.no { color: #b00020; font-weight: 700; }
figure { display: inline-block; margin: 0.6em 1.2em 1em 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { font-size: 0.88em; color: #3d4750; max-width: 640px; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


# --------------------------------------------------------------------------- formatting
def fmt(x: Any) -> str:
    """A number as a reader wants it (AUC-like values to 4 decimals); escaped text otherwise."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "n/a"
        if math.isinf(x):
            return "&infin;" if x > 0 else "-&infin;"
        a = abs(x)
        if a == 0:
            return "0"
        if a >= 1e4:
            return f"{x:,.0f}"
        if a >= 100:
            return f"{x:.0f}"
        if a >= 10:
            return f"{x:.1f}"
        if a >= 1:
            return f"{x:.2f}"
        if a >= 1e-3:
            return f"{x:.4f}"
        return f"{x:.2e}"
    if isinstance(x, list | tuple) and all(not isinstance(v, dict | list) for v in x):
        return "[" + ", ".join(fmt(v) for v in x) + "]"
    return html.escape(str(x))


def _ci(pair: Any, none_as: str = "n/a") -> str:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return ""
    lo, hi = (none_as if v is None else fmt(v) for v in pair)
    return f' <span class="ci">[{lo}, {hi}]</span>'


def _esc(s: Any) -> str:
    return html.escape(str(s))


# --------------------------------------------------------------------------- ROC tables
def _roc_table(name: str, roc: Mapping[str, Any]) -> str:
    methods: Mapping[str, Any] = roc["methods"]
    keys = sorted({k for m in methods.values() for k in m["bkg_eff_at_sig_eff"]}, key=float)
    best = max(methods, key=lambda m: methods[m]["auc"])
    n_boot = roc.get("n_boot")
    boot = (
        f", 95% intervals from {fmt(n_boot)} bootstrap resamples" if isinstance(n_boot, int) else ""
    )
    out = [
        f"<h3>ROC &ldquo;{_esc(name)}&rdquo;</h3>",
        f'<p class="note">signal: {_esc(roc["signal"])} (n = {fmt(roc["n_signal"])}), '
        f"background: {_esc(roc['background'])} (n = {fmt(roc['n_background'])}){boot}. "
        "&epsilon;<sub>B</sub>: fraction of background kept at the signal efficiency "
        "&epsilon;<sub>S</sub>; rejection = 1/&epsilon;<sub>B</sub>.</p>",
        "<table><thead><tr><th class='name'>method</th><th>AUC [95% CI]</th>",
    ]
    out += [
        f"<th>&epsilon;<sub>B</sub> at &epsilon;<sub>S</sub> = {_esc(k)}<br>rejection</th>"
        for k in keys
    ]
    out.append("</tr></thead><tbody>")
    for m, e in methods.items():
        cls = ' class="best"' if m == best and len(methods) > 1 else ""
        row = [
            f"<tr><td class='name'>{_esc(m)}</td><td><span{cls}>{fmt(e['auc'])}</span>{_ci(e.get('auc_ci95'))}</td>"
        ]
        for k in keys:
            eff = e["bkg_eff_at_sig_eff"].get(k)
            if eff is None:
                row.append("<td>n/a</td>")
                continue
            rej = e.get("rejection_at_sig_eff", {}).get(k, 1.0 / eff if eff > 0 else None)
            rej_txt = "&infin;" if rej is None else fmt(rej)
            eff_ci = _ci(e.get("bkg_eff_at_sig_eff_ci95", {}).get(k))
            rej_ci = _ci(e.get("rejection_at_sig_eff_ci95", {}).get(k), none_as="&infin;")
            row.append(f"<td>{fmt(eff)}{eff_ci}<br>{rej_txt}{rej_ci}</td>")
        out.append("".join(row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


# --------------------------------------------------------------------------- other blocks
def _is_scalar(v: Any) -> bool:
    return (
        v is None
        or isinstance(v, str | int | float | bool)
        or (
            isinstance(v, list)
            and all(_is_scalar(x) and not isinstance(x, list) for x in v)
            and len(v) <= 8
        )
    )


def _is_confusion(v: Any) -> bool:
    return (
        isinstance(v, Mapping)
        and isinstance(v.get("labels"), list)
        and isinstance(v.get("matrix"), list)
        and len(v["matrix"]) == len(v["labels"])
        and all(isinstance(r, list) and len(r) == len(v["labels"]) for r in v["matrix"])
    )


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td class='name'>{_esc(k)}</td>{_cell(v)}</tr>" for k, v in items.items())
    return f"<table><tbody>{rows}</tbody></table>"


def _confusion_table(v: Mapping[str, Any]) -> str:
    labels = v["labels"]
    head = "".join(f"<th>{_esc(lab)}</th>" for lab in labels)
    body = "".join(
        f"<tr><th class='name'>{_esc(lab)}</th>"
        + "".join(f"<td>{fmt(x)}</td>" for x in row)
        + "</tr>"
        for lab, row in zip(labels, v["matrix"], strict=True)
    )
    extra = {k: x for k, x in v.items() if k not in ("labels", "matrix")}
    note = (
        f'<p class="note">{", ".join(f"{_esc(k)}: {fmt(x)}" for k, x in extra.items())}</p>'
        if extra
        else ""
    )
    return f"<table><thead><tr><th class='name'>true &darr; / predicted &rarr;</th>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def _cell(v: Any) -> str:
    if isinstance(v, bool):
        return "<td class='yes'>&#10003; yes</td>" if v else "<td class='no'>&#10007; no</td>"
    return f"<td>{fmt(v)}</td>"


def _row_table(
    rows: Mapping[str, Mapping[str, Any]], layout: Mapping[str, Any] | None = None
) -> str:
    """A row per key; ``layout`` (a ``tables`` entry) may pick and name the columns."""
    layout = layout or {}
    picked = layout.get("columns")
    if isinstance(picked, Mapping) and picked:
        cols = [str(c) for c in picked]
        headers = [str(h) for h in picked.values()]
    else:
        cols = []
        for r in rows.values():
            cols += [c for c in r if c not in cols]
        headers = cols
    label = layout.get("row_label")
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        f"<tr><td class='name'>{_esc(r.get(label, k) if label else k)}</td>"
        + "".join(_cell(r.get(c)) for c in cols)
        + "</tr>"
        for k, r in rows.items()
    )
    corner = _esc(layout.get("row_header", ""))
    return f"<table><thead><tr><th class='name'>{corner}</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _block(name: str, value: Any, level: int, layout: Mapping[str, Any] | None = None) -> str:
    layout = layout or {}
    h = f"<h{level}>{_esc(layout.get('title', name))}</h{level}>"
    if _is_confusion(value):
        return h + _confusion_table(value)
    if isinstance(value, Mapping):
        if value and all(
            isinstance(v, Mapping)
            and v
            and all(_is_scalar(x) for x in v.values())
            and not _is_confusion(v)
            for v in value.values()
        ):
            return h + _row_table(value, layout)
        scalars = {k: v for k, v in value.items() if _is_scalar(v)}
        parts = [h, _kv_table(scalars)] if scalars else [h]
        parts += [_block(k, v, min(level + 1, 6)) for k, v in value.items() if not _is_scalar(v)]
        return "\n".join(parts)
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        body = "".join("<tr>" + "".join(f"<td>{fmt(x)}</td>" for x in r) + "</tr>" for r in value)
        return h + f"<table><tbody>{body}</tbody></table>"
    return h + f"<p>{fmt(value)}</p>"


# --------------------------------------------------------------------------- plots
def _caption(name: str) -> str:
    stem = Path(name).stem
    return "ROC curves" if stem == "roc" else stem.replace("_", " ")


def _figures(directory: Path, captions: Mapping[str, str]) -> str:
    found = sorted(p.name for p in directory.glob("*.png"))
    order = [n for n in ("roc.png", *captions) if n in found or n in captions]
    order = list(dict.fromkeys(order + found))
    out = []
    for name in order:
        caption = captions.get(name) or _caption(name)
        path = directory / name
        if Path(name).name != name or not path.is_file():
            out.append(f'<p class="note">plot {_esc(name)} ({_esc(caption)}) is missing.</p>')
            continue
        data = path.read_bytes()
        if not data.startswith(_PNG_MAGIC):
            out.append(f'<p class="note">plot {_esc(name)} is not a PNG file; left out.</p>')
            continue
        b64 = base64.b64encode(data).decode("ascii")
        out.append(
            f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}"><figcaption><b>{_esc(name)}</b>: {_esc(caption)}</figcaption></figure>'
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- page
@dataclass(frozen=True)
class TaskMetrics:
    """One task's evaluation: its name, directory and validated ``metrics.json`` content."""

    name: str
    directory: Path
    metrics: dict[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> TaskMetrics:
        """Read ``path`` (a metrics.json, or a directory holding one); HepmlError names the file."""
        p = Path(path)
        if p.is_dir():
            p = p / "metrics.json"
        section = _read_section(p)
        metrics = section if section is not None else read_metrics(p)
        return cls(name=p.parent.name or "task", directory=p.parent, metrics=metrics)

    @property
    def title(self) -> str:
        """The heading: a section's ``section`` string, else the task's name."""
        return str(self.metrics.get("section") or self.name)


def _read_section(path: Path) -> dict[str, Any] | None:
    """A ``metrics.json`` with a ``section`` key (no ROC layout needed), checked; else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # read_metrics says what is wrong
    if not isinstance(data, dict) or "section" not in data:
        return None
    if not isinstance(data["section"], str) or not data["section"]:
        raise HepmlError(f"metrics file '{path}': key 'section' is not a non-empty string")
    plots = data.get("plots")
    if plots is not None and (
        not isinstance(plots, Mapping) or not all(isinstance(v, str) for v in plots.values())
    ):
        raise HepmlError(
            f"metrics file '{path}': key 'plots' is not an object of file name -> caption"
        )
    _check_tables(path, data.get("tables"))
    return data


_TABLE_KEYS = ("title", "row_header", "row_label", "columns")


def _check_tables(path: Path, tables: Any) -> None:
    """The optional ``tables`` block: ``{block: {title, row_header, row_label, columns}}``."""
    if tables is None:
        return
    if not isinstance(tables, Mapping):
        raise HepmlError(f"metrics file '{path}': key 'tables' is not an object")
    for block, layout in tables.items():
        where = f"metrics file '{path}': key 'tables.{block}"
        if not isinstance(layout, Mapping):
            raise HepmlError(f"{where}' is not an object")
        for k, v in layout.items():
            if k not in _TABLE_KEYS:
                raise HepmlError(f"{where}.{k}' is unknown (allowed: {', '.join(_TABLE_KEYS)})")
            if k == "columns":
                if not isinstance(v, Mapping) or not all(isinstance(h, str) for h in v.values()):
                    raise HepmlError(f"{where}.columns' is not an object of column -> header")
            elif not isinstance(v, str):
                raise HepmlError(f"{where}.{k}' is not a string")


def _section(task: TaskMetrics) -> str:
    m = task.metrics
    network = f" <span class='meta'>network: {_esc(m['network'])}</span>" if "network" in m else ""
    out = [
        f'<section id="{_esc(_anchor(task.name))}">',
        f"<h2>{_esc(task.title)}{network}</h2>",
    ]
    out += [_roc_table(name, roc) for name, roc in m.get("rocs", {}).items()]
    blocks = {k: v for k, v in m.items() if k not in RESERVED}
    scalars = {k: v for k, v in blocks.items() if _is_scalar(v)}
    if scalars:
        out.append("<h3>summary</h3>" + _kv_table(scalars))
    tables = m.get("tables") or {}
    out += [_block(k, v, 3, tables.get(k)) for k, v in blocks.items() if not _is_scalar(v)]
    plots = m.get("plots") or {}
    figures = _figures(task.directory, plots)
    if figures:
        out.append("<h3>plots</h3>\n" + figures)
    out.append("</section>")
    return "\n".join(out)


def _anchor(name: str) -> str:
    return "task-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def render_report(
    tasks: Sequence[TaskMetrics],
    seed: int,
    date: str,
    config_text: str | None = None,
    title: str = "hepml report",
) -> str:
    """The whole HTML page (a string) for ``tasks``."""
    nav = " ".join(f'<a href="#{_esc(_anchor(t.name))}">{_esc(t.title)}</a>' for t in tasks)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">seed {_esc(seed)} &middot; {_esc(date)} &middot; {len(tasks)} task{"s" if len(tasks) != 1 else ""}</p>',
        f"<nav>{nav}</nav>",
    ]
    parts += [_section(t) for t in tasks]
    if config_text is not None:
        parts.append(
            f"<h2>configuration</h2><details><summary>the validated config, defaults filled</summary><pre>{_esc(config_text)}</pre></details>"
        )
    parts.append(
        '<p class="meta">written by <code>hepml report</code>; everything on this page is embedded.</p></body></html>'
    )
    return "\n".join(parts) + "\n"


def write_report(
    out: str | Path,
    inputs: Sequence[str | Path],
    seed: int,
    *,
    date: str | None = None,
    config_text: str | None = None,
) -> None:
    """Read every input's metrics and write the report to ``out`` atomically."""
    if not inputs:
        raise HepmlError("no metrics.json given to the report")
    tasks = [TaskMetrics.read(p) for p in inputs]
    page = render_report(tasks, seed, date or dt.date.today().isoformat(), config_text)
    atomic_write_text(out, page)


# --------------------------------------------------------------------------- CLI
def add_arguments(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="config YAML file (for the seed)")
    p.add_argument(
        "--input",
        required=True,
        nargs="+",
        type=Path,
        help="metrics.json files (or their directories)",
    )
    p.add_argument("--out", required=True, type=Path, help="HTML file to write")


def run(args: argparse.Namespace) -> None:
    cfg = config.load(args.config)
    write_report(args.out, list(args.input), int(cfg["seed"]), config_text=config.dump(cfg))
