"""`sweep report`: the terminal summary, the PNG figures and one self-contained HTML
page (images embedded, no network access at all) of a sweep, from its files."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console, Group
from rich.table import Table

from orchestrator.analysis import plots
from orchestrator.analysis.account import ComputeAccount, compute_account
from orchestrator.analysis.advice import advise
from orchestrator.analysis.leaderboard import leaderboard, leaderboard_frame
from orchestrator.results import schema
from orchestrator.results.atomic import write_atomic
from orchestrator.results.load import SweepTables
from orchestrator.results.tables import diagnosed

HTML_FILE = "report.html"


@dataclass
class Report:
    out: Path
    account: ComputeAccount
    counts: dict[str, pd.Series]
    advice: list[str] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)  # title -> PNG
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why
    importance: pd.Series | None = None

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


def build_report(tables: SweepTables, out: Path, top: int = 10) -> Report:
    """Write the figures and report.html into `out`; return what they hold."""
    out.mkdir(parents=True, exist_ok=True)
    trials, history, spec = tables.trials, tables.history, tables.spec
    report = Report(out, compute_account(trials, history), _counts(trials),
                    advice=advise(trials, spec))
    figures = {
        "Learning curves": lambda: plots.learning_curves(trials, history, spec, out),
        "The metric against each searched setting":
            lambda: plots.metric_vs_settings(trials, spec, out),
        "Parallel coordinates": lambda: plots.parallel_coordinates(trials, spec, out),
        "Learning-rate schedules of the top trials":
            lambda: plots.lr_curves(trials, history, spec, out, top=min(top, 5)),
    }
    for title, draw in figures.items():
        path = draw()
        if path:
            report.figures[title] = path
    importance_png, report.importance = plots.importance(trials, spec, out)
    if importance_png:
        report.figures["Hyperparameter importance"] = importance_png
    produced = {p.name for p in report.figures.values()}
    report.skipped = {name: why for name, why in plots.SKIPPED.items() if name not in produced}
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
    if report.importance is not None and len(report.importance):
        parts.append("importance: " + ", ".join(f"{k} {v:.3f}"
                                                for k, v in report.importance.items()))
    parts.append(f"figures and report: {report.html_path}")
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
.skipped { color: #6c757d; font-size: .85rem; }
.wide { overflow-x: auto; }
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
    figures = "".join(f"<h2>{html.escape(title)}</h2>{_img(path, title)}"
                      for title, path in report.figures.items())
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
<title>sweep report: {html.escape(spec['name'])}</title><style>{STYLE}</style></head>
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
