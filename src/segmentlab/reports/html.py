"""Self-contained interactive HTML reports: the page kit (sections, tables, figures, screenshots).

A report is ONE HTML file that works offline from ``file://``: plotly.js is inlined once in the
page head, every figure is a ``<div>`` drawn by it, and the only other script is a few lines
that make tables sortable. Text taken from data or runs is escaped, so a segment named
``<script>`` shows as text. `reports.study` and `reports.eda` build their reports from these pieces.

To look at a report without a browser window (or check its layout)::

    python -m segmentlab.reports.html screenshot REPORT.html OUT.png [--height 9000]
"""

from __future__ import annotations

import argparse
import html
import math
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from segmentlab import vocabulary

#: Flags that let headless Chromium run as root in a container without network side trips.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars")
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

_CSS = """
:root{--fg:#1f2933;--muted:#52606d;--bg:#f4f6f8;--card:#fff;--line:#e1e5ea;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 """ + FONT + """;color:var(--fg);background:var(--bg)}
main{max-width:1200px;margin:0 auto;padding:24px 20px 60px}
h1{font-size:1.7rem;margin:0 0 6px}h2{font-size:1.25rem;margin:0 0 4px}h3{font-size:1.05rem;margin:0}
header.report p{margin:2px 0;color:var(--muted)}
nav.toc{margin:14px 0 0;display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.9rem}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.stats{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 0}
.stat{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 14px}
.stat b{display:block;font-size:1.2rem}.stat span{color:var(--muted);font-size:.85rem}
section.card{background:var(--card);border:1px solid var(--line);border-radius:10px;
 padding:18px 22px;margin:18px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
section.card>h3{margin:16px 0 4px}
p.reading{margin:0 0 12px;color:var(--muted)}p.note{font-style:italic;color:var(--muted);margin:0}
/* auto-fill, not auto-fit: a figure drawn before its neighbour exists must not take the row */
.pair{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:12px}
.table-wrap{overflow-x:auto;margin-top:8px}
table{border-collapse:collapse;width:100%;font-size:.88rem;font-variant-numeric:tabular-nums}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f8fafc;font-weight:600}.num{text-align:right}
table.sortable th{cursor:pointer;user-select:none;white-space:nowrap}table.sortable td.num{white-space:nowrap}
table.sortable th:hover{background:#eef2f7}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.best td{background:#eaf1ff;font-weight:600}
/* the key column stays in view while a wide table scrolls sideways */
th.pin,td.pin{position:sticky;left:0;z-index:1;background:var(--card);min-width:13em;max-width:19em;
 white-space:normal!important;box-shadow:inset -1px 0 var(--line)}
th.pin{background:#f8fafc}tr.best td.pin{background:#eaf1ff}
.why{font-size:.85rem;margin:0 0 8px;padding:6px 9px;background:#f8fafc;border-radius:6px}
.why ul{margin:2px 0 0;padding-left:18px}.why li{margin:1px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px}
.segment{border:1px solid var(--line);border-top:5px solid var(--colour);border-radius:8px;
 padding:12px 14px}
.segment .sub{color:var(--muted);font-size:.88rem;margin:2px 0 8px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:0 0 8px;
 font-size:.88rem}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
ul.actions{margin:0;padding-left:18px;font-size:.88rem}ul.actions li{margin:2px 0}
"""

_SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.tabIndex = 0;
    function sort() {
      var up = th.getAttribute("aria-sort") !== "ascending", numeric = th.classList.contains("num");
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      function key(row) {
        var v = row.cells[col].getAttribute("data-value");
        return numeric ? (v === "" ? NaN : parseFloat(v)) : v;
      }
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (!numeric) return up ? x.localeCompare(y) : y.localeCompare(x);
        if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  /* missing values last */
        return up ? x - y : y - x;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
});
"""


def esc(value: object) -> str:
    """Text for HTML, quotes included."""
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Section:
    """One card of a report: ``body`` is HTML built by this package, ``reading`` plain text."""

    id: str
    title: str
    body: str
    reading: str = ""

    def to_html(self) -> str:
        reading = f'<p class="reading">{esc(self.reading)}</p>' if self.reading else ""
        return (f'<section id="{esc(self.id)}" class="card"><h2>{esc(self.title)}</h2>'
                f"{reading}{self.body}</section>")


def metric_heading(key: str) -> str:
    """A metric as a column heading: its label and which way is better (↑/↓)."""
    declared = vocabulary.metric(key)
    return f"{vocabulary.label(key)} {declared.arrow if declared else ''}".strip()


def note(text: str) -> str:
    """A one-line remark in place of a figure, e.g. why a section is empty."""
    return f'<p class="note">{esc(text)}</p>'


def stats_html(stats: Mapping[str, str]) -> str:
    """Key figures as a row of small boxes: ``{label: value}``."""
    boxes = "".join(f'<div class="stat"><b>{esc(v)}</b><span>{esc(k)}</span></div>'
                    for k, v in stats.items())
    return f'<div class="stats">{boxes}</div>'


def html_page(title: str, sections: Sequence[Section], intro: str = "") -> str:
    """A complete HTML document: header, table of contents, the sections.

    Parameters
    ----------
    title : str
        Page title and ``<h1>`` (escaped).
    sections : sequence of Section
        In page order.
    intro : str
        HTML under the title (build it with ``esc``, ``stats_html``).

    Returns
    -------
    str
        The document; plotly.js is inlined once when any section holds a figure.
    """
    body = "\n".join(s.to_html() for s in sections)
    plotly = f"<script>{get_plotlyjs()}</script>" if "plotly-graph-div" in body else ""
    sort = f"<script>{_SORT_JS}</script>" if 'class="sortable"' in body else ""
    toc = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_CSS}</style>{plotly}</head><body><main>"
            f'<header class="report"><h1>{esc(title)}</h1>{intro}<nav class="toc">{toc}</nav>'
            f"</header>\n{body}\n</main>{sort}</body></html>\n")


def figure_html(fig: go.Figure, height: int = 420) -> str:
    """A plotly figure as a ``<div>`` plus the call that draws it (plotly.js not included)."""
    fig = go.Figure(fig)  # a copy: styling here must not change the caller's figure
    fig.update_layout(template="plotly_white", font={"family": FONT, "size": 13},
                      height=fig.layout.height or height)
    if fig.layout.margin.t is None:
        fig.update_layout(margin={"l": 60, "r": 24, "t": 48, "b": 48})
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    config = {"displaylogo": False, "responsive": True}
    return fig.to_html(full_html=False, include_plotlyjs=False, config=config)


def money(value: float, currency: str = "£") -> str:
    """Short amount: ``£1.16M``, ``£950k``, ``£302``, ``£12.50``."""
    if value is None or not math.isfinite(value):
        return "–"
    sign, size = ("-" if value < 0 else ""), abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{sign}{currency}{size / limit:.3g}{suffix}"
    return f"{sign}{currency}{size:,.0f}" if size >= 100 else f"{sign}{currency}{size:,.2f}"


def number(value: object) -> str:
    """Metric value for a table: ``0.523``, ``12.46``, ``3,120``; missing as a dash."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–" if value is None else str(value)
    if not math.isfinite(v):
        return "–"
    if v.is_integer() or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:,.2f}"


def table_html(frame: pd.DataFrame, formats: Mapping[str, Callable[[object], str]] | None = None,
               sortable: bool = False, row_classes: Sequence[str] | None = None,
               pinned: bool = False) -> str:
    """A frame as an escaped HTML table (index dropped; reset it first to show it).

    Parameters
    ----------
    frame : DataFrame
        Rows to show; numeric columns are right-aligned.
    formats : mapping of column to callable, optional
        Value -> display text; the default shows numbers with ``number`` and text as is.
    sortable : bool
        Clicking a header sorts by that column (each cell carries its raw value).
    row_classes : sequence of str, optional
        A CSS class per row (``"best"`` highlights).
    pinned : bool
        Keep the first column in view when the table scrolls sideways.
    """
    formats = formats or {}
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]

    def cell_class(i: int, is_num: bool) -> str:
        names = (["pin"] if pinned and i == 0 else []) + (["num"] if is_num else [])
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{cell_class(i, n)}>{esc(c)}</th>"
                   for i, (c, n) in enumerate(zip(frame.columns, numeric, strict=True)))
    rows = []
    for i, record in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for j, (column, value, is_num) in enumerate(zip(frame.columns, record, numeric, strict=True)):
            text = formats.get(column, number if is_num else _text)(value)
            raw = "" if is_num and pd.isna(value) else value
            key = f' data-value="{esc(raw)}"' if sortable else ""
            cells.append(f"<td{cell_class(j, is_num)}{key}>{esc(text)}</td>")
        css = f' class="{esc(row_classes[i])}"' if row_classes and row_classes[i] else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    kind = ' class="sortable"' if sortable else ""
    return (f'<div class="table-wrap"><table{kind}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _text(value: object) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def ledger_section(ledger: pd.DataFrame | None, section_id: str = "ledger") -> Section:
    """The cleaning ledger (``step``, ``rows``, ``share``) as a table with a one-line reading."""
    title = "Cleaning ledger"
    if ledger is None or ledger.empty:
        return Section(section_id, title, note("No cleaning ledger was recorded."))
    rows = ledger.set_index("step")["rows"]
    reading = ""
    if {"rows_in", "rows_kept"} <= set(rows.index):
        steps = rows.drop(["rows_in", "rows_kept"])
        reading = (f"{rows['rows_kept']:,} of {rows['rows_in']:,} input rows kept as purchases "
                   f"({rows['rows_kept'] / max(rows['rows_in'], 1):.0%})")
        if len(steps) and steps.max() > 0:
            reading += (f"; the largest step is {steps.idxmax()} "
                        f"({steps.max():,} rows, {steps.max() / max(rows['rows_in'], 1):.1%})")
        reading += "."
    share = {"share": lambda v: f"{float(v):.2%}"} if "share" in ledger else {}
    return Section(section_id, title, table_html(ledger, formats=share), reading)


def screenshot(report: str | Path, out: str | Path, width: int = 1400, height: int = 4000,
               chromium: str | None = None, timeout: float = 180.0) -> Path:
    """Render a report in headless Chromium and save a PNG of its top ``height`` pixels.

    Parameters
    ----------
    report : str or Path
        The HTML file.
    out : str or Path
        PNG to write.
    width, height : int
        Window size in CSS pixels; the page is cut at ``height``.
    chromium : str, optional
        Browser executable; default ``chromium`` on the PATH, else ``/usr/bin/chromium``.
    timeout : float
        Seconds before giving up.

    Returns
    -------
    Path
        ``out``, resolved.
    """
    browser = chromium or shutil.which("chromium") or "/usr/bin/chromium"
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="segmentlab-chromium-") as profile:
        # The virtual time budget lets the plotly calls finish before the capture.
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", f"--screenshot={out}",
                   "--virtual-time-budget=15000", Path(report).resolve().as_uri()]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m segmentlab.reports.html screenshot REPORT.html OUT.png``."""
    parser = argparse.ArgumentParser(prog="python -m segmentlab.reports.html")
    commands = parser.add_subparsers(dest="command", required=True)
    shot = commands.add_parser("screenshot", help="PNG of a report, via headless Chromium")
    shot.add_argument("report")
    shot.add_argument("out")
    shot.add_argument("--width", type=int, default=1400)
    shot.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    print(screenshot(args.report, args.out, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
