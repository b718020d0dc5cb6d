"""`sweep report`: the terminal summary and one self-contained HTML page of a sweep, from
its files. The page's charts are interactive (plotly, its JavaScript inline once) or,
with `--format png`, PNG figures written beside it and embedded; either way the page
fetches nothing from the network."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console, Group
from rich.table import Table

from orchestrator.analysis.account import ComputeAccount, compute_account
from orchestrator.analysis.advice import Suggestion, advise, schedule_suggestions
from orchestrator.analysis.evidence import Evidence, evidence
from orchestrator.analysis.importance import importance
from orchestrator.analysis.leaderboard import leaderboard, leaderboard_frame
from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic
from orchestrator.results.load import SweepTables
from orchestrator.results.tables import diagnosed

HTML_FILE = "report.html"
# each figure: its file stem (PNG file, chart id) -> its heading on the page
FIGURES = {
    "learning_curves": "Learning curves",
    "signals": "The training's own signals beside the loss",
    "metric_vs_settings": "The metric against each searched setting",
    "parallel_coordinates": "Parallel coordinates",
    "lr_curves": "Learning-rate schedules of the top trials",
    "importance": "Hyperparameter importance",
}
# how to use an interactive chart, under it
HINTS = {
    "learning_curves": "Hover a line for its trial, settings and value; click a stop reason "
                       "in the legend to hide or show its trials.",
    "signals": "Gradient norm (before clipping), update size against the weights (dotted: "
               "the usual healthy 1e-3) and the first layer's gradient against the last's, "
               "per epoch, on log axes (docs/diagnosis.md). A trial's line breaks where a "
               "value was not measured or not finite.",
    "parallel_coordinates": "Drag along an axis to keep only the trials in that range (on "
                            "several axes at once); click the axis outside it to clear.",
}


@dataclass
class Report:
    out: Path
    account: ComputeAccount
    counts: dict[str, pd.Series]
    advice: list[str] = field(default_factory=list)
    fmt: str = "html"
    figures: dict[str, str] = field(default_factory=dict)  # file stem -> chart or <img>
    pngs: list[Path] = field(default_factory=list)  # written with --format png
    skipped: dict[str, str] = field(default_factory=dict)  # heading -> why not drawn
    importance: pd.DataFrame | None = None  # mean, std per searched setting
    evidence: Evidence | None = None  # what the trials say of each searched key
    schedule: list[Suggestion] = field(default_factory=list)

    @property
    def html_path(self) -> Path:
        return self.out / HTML_FILE


def _counts(trials: pd.DataFrame) -> dict[str, pd.Series]:
    return {column: trials[column].fillna("-").value_counts()
            for column in (schema.STATUS, schema.STOP_REASON, "diagnosis")}


def rediagnosed(tables: SweepTables) -> SweepTables:
    """The sweep's tables with every trial diagnosed again by today's rules (a sweep
    written by an older version reads like a new one)."""
    return replace(tables, trials=diagnosed(tables.trials, tables.history, tables.metric,
                                            tables.mode))


def _charts(tables: SweepTables, report: Report, top: int) -> None:
    """The interactive charts, as HTML fragments, into `report`."""
    from orchestrator.analysis import charts

    trials, history, spec = tables.trials, tables.history, tables.spec
    drawn = {
        "learning_curves": lambda: charts.learning_curves(trials, history, spec),
        "signals": lambda: charts.signals(trials, history, spec),
        "metric_vs_settings": lambda: charts.metric_vs_settings(trials, spec),
        "parallel_coordinates": lambda: charts.parallel_coordinates(trials, spec),
        "lr_curves": lambda: charts.lr_curves(trials, history, spec, top=min(top, 5)),
        "importance": lambda: charts.importance(report.importance, spec),
    }
    for name, draw in drawn.items():
        fig = draw()
        if fig is None:
            report.skipped[FIGURES[name]] = charts.SKIPPED[name]
            continue
        hint = f'<p class="hint">{html.escape(HINTS[name])}</p>' if name in HINTS else ""
        report.figures[name] = charts.fragment(fig, name) + hint


def _pngs(tables: SweepTables, report: Report, top: int) -> None:
    """The PNG figures, written into the report's folder and embedded in the page."""
    from orchestrator.analysis import plots  # matplotlib: only for PNGs

    trials, history, spec, out = tables.trials, tables.history, tables.spec, report.out
    drawn = {
        "learning_curves": lambda: plots.learning_curves(trials, history, spec, out),
        "signals": lambda: plots.signals(trials, history, spec, out),
        "metric_vs_settings": lambda: plots.metric_vs_settings(trials, spec, out),
        "parallel_coordinates": lambda: plots.parallel_coordinates(trials, spec, out),
        "lr_curves": lambda: plots.lr_curves(trials, history, spec, out, top=min(top, 5)),
        "importance": lambda: plots.importance(report.importance, spec, out),
    }
    for name, draw in drawn.items():
        path = draw()
        if path is None:
            report.skipped[FIGURES[name]] = plots.SKIPPED[name]
            continue
        report.pngs.append(path)
        report.figures[name] = _img(path, FIGURES[name])


def build_report(tables: SweepTables, out: Path, top: int = 10, fmt: str = "html") -> Report:
    """Write report.html (and with fmt "png" the PNG figures) into `out`; return what
    they hold."""
    out.mkdir(parents=True, exist_ok=True)
    trials, spec = tables.trials, tables.spec
    found = evidence(trials, spec, tables.history)
    report = Report(out, compute_account(trials, tables.history), _counts(trials),
                    advice=advise(trials, spec, found=found), fmt=fmt,
                    importance=importance(trials, spec), evidence=found,
                    schedule=schedule_suggestions(trials, spec))
    (_pngs if fmt == "png" else _charts)(tables, report, top)
    html_text = render_html(tables, report, top)
    write_atomic(report.html_path, lambda tmp: tmp.write_text(html_text))
    return report


# -- terminal ------------------------------------------------------------------

def _series_table(title: str, frame: pd.DataFrame | pd.Series) -> Table:
    frame = frame.to_frame("trials") if isinstance(frame, pd.Series) else frame
    table = Table(title=title, title_justify="left")
    table.add_column(frame.index.name or "", justify="left")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for key, row in zip(frame.index, frame.itertuples(index=False)):
        table.add_row(str(key), *map(_number, row))
    return table


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


# -- what to try next -------------------------------------------------------------

def _dist_text(dist: dict) -> str:
    (kind, args), = dist.items()
    return f"{kind} {yaml.safe_dump(list(args), default_flow_style=True).strip()}"


def next_rows(report: Report, spec: dict) -> list[tuple[str, str, str, list[str]]]:
    """(setting, now, next, why) for every searched key and schedule suggestion."""
    rows = []
    for key in report.evidence.keys if report.evidence else ():
        why = [c.sentence for c in key.claims] or ([key.where] if key.where else [])
        after = _dist_text(key.after) if key.changed else "keep"
        rows.append((key.key, _dist_text(key.before), after, why))
    for suggestion in report.schedule:
        section, _, leaf = suggestion.key.partition(".")
        now = (spec.get(section) or {}).get(leaf)
        rows.append((suggestion.key, "" if now is None else str(now),
                     str(suggestion.value or "more"), [suggestion.sentence]))
    return rows


def next_note(tables: SweepTables, report: Report) -> str:
    """The line under the table: why nothing was claimed, or how to act on it."""
    found = report.evidence
    if found is not None and found.note:
        return f"No claim about the search space: {found.note}."
    moved = found is not None and found.changed
    return (f"`sweep refine {tables.spec['name']}` writes "
            + ("these changes" if moved or report.schedule else "the same space, kept")
            + " into the next spec (docs/iterate.md).")


def _next_table(tables: SweepTables, report: Report) -> Table:
    judged = report.evidence.judged if report.evidence else 0
    table = Table(title=f"what to try next (from {judged} trials that ended)",
                  title_justify="left")
    for column in ("setting", "now", "next", "why"):
        table.add_column(column, overflow="fold")
    for setting, now, after, why in next_rows(report, tables.spec):
        table.add_row(setting, now, after, "\n".join(why))
    return table


def terminal_summary(tables: SweepTables, report: Report, top: int = 10) -> Group:
    searched = list(tables.spec.get("search_space", {}))
    parts = [leaderboard(tables.trials, searched, tables.metric, tables.mode, top)]
    for column, counts in report.counts.items():
        parts.append(_series_table(f"trials by {column}", counts.rename_axis(column)))
    account = report.account
    parts.append(f"[bold]compute:[/bold] {account.sentence()}")
    parts.append(_series_table("compute by stop_reason",
                               account.by_stop_reason.rename_axis("stop_reason")))
    parts.append(_series_table("compute by node", account.by_node.rename_axis("node")))
    parts.extend(f"advice: {sentence}" for sentence in report.advice)
    if next_rows(report, tables.spec):
        parts.append(_next_table(tables, report))
    parts.append(next_note(tables, report))
    if report.importance is not None and len(report.importance):
        parts.append("importance: " + ", ".join(
            f"{k} {v:.3f}" for k, v in report.importance["mean"].items()))
    if report.pngs:
        parts.append(f"figures: {len(report.pngs)} PNG files in {report.out}")
    parts.append(f"report: {report.html_path}")
    return Group(*parts)


def print_report(console: Console, tables: SweepTables, report: Report, top: int = 10) -> None:
    console.print(terminal_summary(tables, report, top))


# -- HTML ----------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; color: #212529; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem;
       border-bottom: 1px solid #dee2e6; padding-bottom: .2rem; }
.meta { color: #6c757d; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid #dee2e6; padding: .25rem .5rem; text-align: right; }
th { background: #f1f3f5; } td:first-child, th:first-child { text-align: left; }
.counts { display: flex; gap: 2rem; flex-wrap: wrap; }
.account { font-size: 1.05rem; background: #e7f5ff; padding: .6rem .8rem; border-radius: 4px; }
img { max-width: 100%; height: auto; border: 1px solid #f1f3f5; }
pre { background: #f8f9fa; padding: .8rem; overflow-x: auto; font-size: .8rem; }
.skipped, .hint { color: #6c757d; font-size: .85rem; }
.hint { margin-top: 0; }
.wide { overflow-x: auto; }
table.next td { text-align: left; vertical-align: top; }
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    return f'<div class="wide">{frame.to_html(index=index, escape=True, border=0)}</div>'


def _diagnoses(tables: SweepTables) -> pd.DataFrame:
    """Trial, its best value, label and reason, best trial first."""
    best = schema.best_column(tables.metric)
    columns = [schema.TRIAL_ID, best, schema.STOP_REASON, "diagnosis", "diagnosis_reason"]
    frame = tables.trials.reindex(columns=columns)
    return frame.sort_values(best, ascending=tables.mode == "min", na_position="last")


def _next_html(tables: SweepTables, report: Report) -> str:
    """The "what to try next" section: a row per searched key (and schedule setting)."""
    rows = "".join(
        f"<tr><td>{html.escape(setting)}</td><td>{html.escape(now)}</td>"
        f"<td>{html.escape(after)}</td><td>{'<br>'.join(map(html.escape, why))}</td></tr>"
        for setting, now, after, why in next_rows(report, tables.spec))
    table = (f'<div class="wide"><table class="next"><thead><tr><th>setting</th><th>now</th>'
             f"<th>next</th><th>why</th></tr></thead><tbody>{rows}</tbody></table></div>"
             if rows else "")
    return (f'<h2 id="next">What to try next</h2>{table}'
            f'<p class="meta">{html.escape(next_note(tables, report))}</p>')


def render_html(tables: SweepTables, report: Report, top: int = 10) -> str:
    spec, sweep = tables.spec, tables.sweep
    searched = list(spec.get("search_space", {}))
    board = leaderboard_frame(tables.trials, searched, tables.metric, tables.mode, top)
    counts = "".join(
        f"<div><h3>by {html.escape(name)}</h3>{_table(series.rename('trials').to_frame(), True)}"
        "</div>" for name, series in report.counts.items())
    account = report.account
    advice = ("<h2>Advice</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in report.advice)
              + "</ul>") if report.advice else ""
    advice += _next_html(tables, report)
    # each heading an anchor: report.html#parallel_coordinates
    figures = "".join(f'<h2 id="{name}">{html.escape(FIGURES[name])}</h2>{figure}'
                      for name, figure in report.figures.items())
    script = ""  # a page of PNGs has no script at all
    if report.fmt == "html" and report.figures:  # plotly.js once, for every chart
        from orchestrator.analysis.charts import plotly_js

        script = f"<script>{plotly_js()}</script>"
    skipped = "".join(f"<li>{html.escape(name)}: {html.escape(why)}</li>"
                      for name, why in report.skipped.items())
    rebuilt = (f"<p class='meta'>Rows completed from Tune's trial folders: "
               f"{html.escape(', '.join(tables.rebuilt))}.</p>" if tables.rebuilt else "")
    meta = " · ".join(html.escape(str(x)) for x in (
        f"{len(tables.trials)} trials", f"status {sweep.get('status')}",
        f"started {sweep.get('started_at')}", f"ended {sweep.get('ended_at', '-')}",
        f"objective {tables.mode} {tables.metric}",
        f"scheduler {spec.get('scheduler', {}).get('name')}",
        f"searcher {spec.get('searcher', {}).get('name')}"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sweep report: {html.escape(spec['name'])}</title><style>{STYLE}</style>{script}</head>
<body>
<h1>Sweep {html.escape(spec['name'])}</h1>
<p class="meta">{meta}</p>{rebuilt}
<h2>Leaderboard</h2>{_table(board)}
{advice}<h2>Compute account</h2>
<p class="account">{html.escape(account.sentence())}</p>
<div class="counts"><div><h3>by stop_reason</h3>{_table(account.by_stop_reason, True)}</div>
<div><h3>by node</h3>{_table(account.by_node, True)}</div></div>
<h2>Trials</h2><div class="counts">{counts}</div>
{figures}
<h2>Diagnosis of each trial</h2>{_table(_diagnoses(tables))}
{f'<p class="skipped">Not drawn:</p><ul class="skipped">{skipped}</ul>' if skipped else ''}
<h2>Resolved spec</h2><pre>{html.escape(yaml.safe_dump(spec, sort_keys=False))}</pre>
</body></html>
"""
