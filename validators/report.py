"""report.json and report.html: one verdict, the evidence behind it, readable offline.

report.json is the machine contract (CLI exit codes, scheduled jobs, later comparisons):
``{**run_info, "passed": bool, "failed_checks": [...], "checks": [CheckResult.to_dict(), ...]}``.
report.html is one self-contained page for people: the verdict first, then each check's score,
interval, threshold and result, then the plots (inline base64 PNGs drawn with matplotlib's Agg
backend, no scripts, no network), then every check's details.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from synthpipe.validators.base import CheckResult, jsonable, verdict

REAL_COLOR = "#4c72b0"
SYNTHETIC_COLOR = "#dd8452"
MAX_DETAIL_ROWS_HTML = 60


# --------------------------------------------------------------------------------------------
# public API


def build_report(checks: list[CheckResult], run_info: dict | None = None) -> dict:
    """The report.json dict: run info, the overall verdict, non-finite source values and every check."""
    result = verdict(checks)
    report = dict(jsonable(run_info or {}))
    report.setdefault("generated_at", datetime.now(UTC).isoformat(timespec="seconds"))
    report["passed"] = result.passed
    report["failed_checks"] = result.failed
    non_finite = non_finite_counts(report)
    if non_finite:
        report["non_finite"] = non_finite
    report["checks"] = [c.to_dict() for c in checks]
    return report


def non_finite_counts(run_info: dict) -> dict[str, int]:
    """Per-column counts of inf / -inf in the source (treated as nulls by ingest), when the run
    info carries them: `source.infinities` (provenance) or `profile.infinities`."""
    found: dict[str, int] = {}
    for holder in (run_info.get("source"), run_info.get("profile")):
        counts = holder.get("infinities") if isinstance(holder, dict) else None
        for column, count in (counts.items() if isinstance(counts, dict) else ()):
            if isinstance(count, int | float) and not isinstance(count, bool) and count:
                found[str(column)] = max(found.get(str(column), 0), int(count))
    return found


def write_report(
    out_dir: Path,
    checks: list[CheckResult],
    run_info: dict,
    history: dict[str, list[float]] | None = None,
) -> dict:
    """Write out_dir/report.json and out_dir/report.html (plus files checks attach, such as
    expectations.json); return the JSON dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(checks, run_info)
    for check in checks:
        written = check.extra.get("_written") or {}
        for name, text in (check.extra.get("_files") or {}).items():
            target = out_dir / Path(name).name
            if written.get(name) == str(target.resolve()):
                continue  # the check already wrote this very file
            target.write_text(text if isinstance(text, str) else json.dumps(jsonable(text), indent=2))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    (out_dir / "report.html").write_text(render_html(report, checks, history, out_dir), encoding="utf-8")
    return report


def markdown_summary(report: dict) -> str:
    """A short markdown digest of report.json (for a Prefect artifact or a pull-request comment)."""
    verdict = "PASS" if report.get("passed") else "FAIL"
    lines = [f"## synthpipe validation: **{verdict}**", ""]
    facts = []
    for key in ("generator", "source", "rows", "seed"):
        if report.get(key) is not None:
            facts.append(f"{key}: `{_short(report[key])}`")
    if facts:
        lines += [" · ".join(facts), ""]
    lines += ["| check | score | 95% interval | threshold | result |", "|---|---|---|---|---|"]
    for c in report.get("checks", []):
        lines.append(
            f"| {c['name']} | {_num(c.get('score'))} | {_interval(c.get('interval'))} | "
            f"{_threshold(c.get('threshold'), c.get('direction', 'higher'))} | {_status_text(c.get('passed'))} |"
        )
    timings = report.get("timings") or {}
    if timings:
        lines += ["", "Timings: " + ", ".join(f"{k.removesuffix('_s')} {_num(v, 1)} s" for k, v in timings.items())]
    failed = [c for c in report.get("checks", []) if c.get("passed") is False]
    if failed:
        lines += ["", "Failed:"] + [f"- **{c['name']}**: {_esc(c.get('summary', ''))}" for c in failed]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# formatting helpers


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    if not math.isfinite(v):
        return "–"
    if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e6):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}"


def _compact(value: float) -> str:
    """Short tick labels: 150000 -> 150k, 2.5e6 -> 2.5M, 0.25 -> 0.25."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def _interval(interval: Any) -> str:
    if not interval or any(v is None for v in interval):
        return "–"
    return f"[{_num(interval[0])}, {_num(interval[1])}]"


def _threshold(threshold: Any, direction: str) -> str:
    if threshold is None:
        return "–"
    return ("≥ " if direction == "higher" else "≤ ") + _num(threshold)


def _status_text(passed: bool | None) -> str:
    return "PASS" if passed is True else "FAIL" if passed is False else "n/a"


def _short(value: Any, limit: int = 160) -> str:
    """One readable line: a mapping as `key: value · key: value` (empty values left out)."""
    if isinstance(value, dict):
        parts = [f"{k}: {v if isinstance(v, str) else json.dumps(v, default=str)}"
                 for k, v in value.items() if v not in (None, {}, [], "")]
        text = " · ".join(parts)
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(value: Any) -> str:
    """Every value from the data passes here: markup escaped (quotes too, so attribute values are
    safe), NUL (which HTML parsers drop or mangle) shown as U+FFFD."""
    return html.escape("" if value is None else str(value)).replace("\x00", "\ufffd")


# --------------------------------------------------------------------------------------------
# plots (matplotlib Agg, inline PNG)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)  # fixed margins: "tight" bboxes cost extra draws
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(figsize: tuple[float, float]):
    """A matplotlib Figure on the Agg canvas, without pyplot's global state (safe in worker threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def plot_distributions(spec: dict) -> str | None:
    """A grid of real-vs-synthetic panels: step histograms for numbers, paired bars for categories."""
    panels = spec.get("panels") or []
    if not panels:
        return None
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure((3.4 * ncols, 2.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, p in zip(axes.flat, panels):
        if p["type"] == "numeric":
            edges = np.asarray(p["edges"])
            ax.stairs(p["real"], edges, fill=True, alpha=0.45, color=REAL_COLOR, label="real")
            ax.stairs(p["synthetic"], edges, color=SYNTHETIC_COLOR, linewidth=1.6, label="synthetic")
            if p.get("datetime"):
                ticks = np.linspace(edges[0], edges[-1], 3)
                ax.set_xticks(ticks, [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d") for t in ticks], fontsize=7)
            else:
                from matplotlib.ticker import FuncFormatter, MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(5))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
            nulls = p.get("null_real", 0) or p.get("null_synthetic", 0)
            if nulls:
                ax.text(0.98, 0.95, f"null {p['null_real']:.0%} / {p['null_synthetic']:.0%}", transform=ax.transAxes,
                        ha="right", va="top", fontsize=7, color="#444")
        else:
            cats = p["categories"]
            x = np.arange(len(cats))
            ax.bar(x - 0.2, p["real"], 0.4, color=REAL_COLOR, alpha=0.75, label="real")
            ax.bar(x + 0.2, p["synthetic"], 0.4, color=SYNTHETIC_COLOR, alpha=0.9, label="synthetic")
            ax.set_xticks(x, [c if len(c) <= 10 else c[:9] + "…" for c in cats], rotation=45, ha="right", fontsize=7)
        title = p["column"] + (f"  ({p['score']:.2f})" if isinstance(p.get("score"), float) else "")
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes.flat[0].legend(fontsize=7, frameon=False)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.02, right=0.99, top=1 - 0.3 / height, bottom=0.7 / height, hspace=0.85, wspace=0.12)
    return _png(fig)


def plot_correlation_difference(spec: dict) -> str | None:
    names = spec.get("columns") or []
    if len(names) < 2:
        return None
    diff = np.abs(np.asarray(spec["synthetic"], float) - np.asarray(spec["real"], float))
    size = min(9.0, 2.5 + 0.42 * len(names))
    fig = _figure((size + 1.2, size))
    ax = fig.subplots()
    image = ax.imshow(diff, cmap="Reds", vmin=0, vmax=max(0.3, float(np.nanmax(diff)) if diff.size else 1))
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    if len(names) <= 16:
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j and np.isfinite(diff[i, j]):
                    ax.text(j, i, f"{diff[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if diff[i, j] > 0.2 else "#333")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="|association synthetic − real|")
    fig.subplots_adjust(left=0.2, right=0.95, top=0.97, bottom=0.2)
    return _png(fig)


def plot_shift_bars(spec: dict) -> str | None:
    names = spec.get("columns") or []
    if not names:
        return None
    fig = _figure((9, 0.32 * len(names) + 1.2))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))[::-1]
    psi_values = np.asarray(spec["psi"], float)
    ax1.barh(y, psi_values, color=[("#c44e52" if v > spec.get("psi_max", 0.2) else "#8c8c8c") for v in psi_values])
    ax1.axvline(spec.get("psi_max", 0.2), color="#c44e52", linestyle="--", linewidth=1)
    ax1.set_yticks(y, names, fontsize=8)
    ax1.set_title("PSI per column (dashed: gate)", fontsize=9)
    ax2.barh(y, spec["importance"], color=SYNTHETIC_COLOR)
    ax2.set_title("classifier permutation importance (AUC drop)", fontsize=9)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.35 / fig.get_figheight(), bottom=0.45 / fig.get_figheight(), wspace=0.08)
    return _png(fig)


def plot_dcr(spec: dict) -> str | None:
    edges = np.asarray(spec["edges"])
    syn, hold = np.asarray(spec["synthetic"], float), np.asarray(spec["holdout"], float)
    fig = _figure((7, 2.8))
    ax = fig.subplots()
    ax.stairs(hold / max(1, hold.sum()), edges, fill=True, alpha=0.45, color=REAL_COLOR, label="holdout → train")
    ax.stairs(syn / max(1, syn.sum()), edges, color=SYNTHETIC_COLOR, linewidth=1.8, label="synthetic → train")
    ax.set_xlabel("distance to closest training record (standardised)", fontsize=8)
    ax.set_ylabel("share of rows", fontsize=8)
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.95, bottom=0.18)
    return _png(fig)


def plot_history(history: dict[str, list[float]]) -> str | None:
    """Loss curves: one small panel per metric against 'epoch' (NaN entries are missing points)."""
    metrics = [k for k, v in history.items() if k != "epoch" and isinstance(v, list | tuple) and len(v)]
    if not metrics:
        return None
    metrics = metrics[:8]
    n = len(metrics)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = _figure((3.6 * ncols, 2.5 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, metrics):
        values = np.asarray([np.nan if v is None else v for v in history[name]], dtype=float)
        epochs = history.get("epoch")
        x = np.asarray(epochs[: len(values)], dtype=float) if epochs is not None else np.arange(1, len(values) + 1)
        x = x[: len(values)]
        ok = np.isfinite(values[: len(x)])
        sparse = ok.sum() < 0.5 * len(x)
        ax.plot(x[ok], values[: len(x)][ok], marker="o" if sparse else None, markersize=3, color=REAL_COLOR)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.08, right=0.98, top=1 - 0.3 / fig.get_figheight(), bottom=0.5 / fig.get_figheight(),
                        hspace=0.6, wspace=0.3)
    return _png(fig)


_PLOTTERS = {
    "distributions": plot_distributions,
    "correlation_difference": plot_correlation_difference,
    "shift_bars": plot_shift_bars,
    "dcr_histogram": plot_dcr,
}


def _render_figure(figure: Any) -> str | None:
    if isinstance(figure, dict):
        plotter = _PLOTTERS.get(figure.get("kind"))
        return plotter(figure) if plotter else None
    if hasattr(figure, "savefig"):  # a matplotlib figure made by a custom check
        return _png(figure)
    return None


# --------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:18px;margin:34px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{border-radius:10px;padding:22px 28px;color:#fff;display:flex;align-items:center;gap:28px;margin-bottom:18px}
.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}
.verdict .word{font-size:56px;font-weight:800;letter-spacing:2px}
.verdict .why{font-size:15px;line-height:1.5}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #e1e4e8;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;border-radius:4px;padding:1px 8px;font-weight:700;font-size:12px;color:#fff}
.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.na{background:#8a8f98}
.note{background:#fff8e1;border-left:4px solid #f9a825;padding:8px 12px;margin:10px 0;font-size:13px}
.muted{color:#666;font-size:12px} img{max-width:100%;background:#fff;border:1px solid #e1e4e8;border-radius:6px}
details{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:8px 0;padding:6px 10px}
summary{cursor:pointer;font-weight:600} .kv td:first-child{width:180px;color:#555}
pre{white-space:pre-wrap;font-size:12px;margin:0}
"""


def _table(rows: list[dict], columns: list[str] | None = None, limit: int = MAX_DETAIL_ROWS_HTML) -> str:
    if not rows:
        return '<p class="muted">no rows</p>'
    columns = columns or list(rows[0])
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in columns:
            v = row.get(c)
            if isinstance(v, bool) or v is None or isinstance(v, str):
                cells.append(f"<td>{_esc('–' if v is None else v)}</td>")
            else:
                cells.append(f'<td class="num">{_num(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="muted">{len(rows) - limit} more rows in report.json</p>' if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _badge(passed: bool | None) -> str:
    cls = "pass" if passed is True else "fail" if passed is False else "na"
    return f'<span class="badge {cls}">{_status_text(passed)}</span>'


def _img(src: str | None, alt: str) -> str:
    return f'<img src="{src}" alt="{_esc(alt)}">' if src else ""


def render_html(
    report: dict, checks: list[CheckResult], history: dict[str, list[float]] | None = None, out_dir: Path | None = None
) -> str:
    """The self-contained page (`out_dir`, where it will live, makes links to Data Docs relative).

    Every check is shown the same way, under its suite section: its verdict and summary, its
    note, its Data Docs link and its figures (each spec carries its own title and caption), then
    its details. Every value from the data goes through `_esc`."""
    from synthpipe.validators.suite import SECTIONS

    result = verdict(checks)
    passed = result.passed
    why = f"{len(result.gated) - len(result.failed)} of {len(result.gated)} gated checks passed"
    if result.failed:
        why += "<br>failed: " + ", ".join(f"<b>{_esc(n)}</b>" for n in result.failed)
    if result.not_applicable:
        why += "<br>not applicable: " + ", ".join(_esc(n) for n in result.not_applicable)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>synthpipe report: {'PASS' if passed else 'FAIL'}</title><style>{CSS}</style></head><body><main>",
        f"<section id='verdict' class='verdict {'pass' if passed else 'fail'}'>"
        f"<div class='word' id='verdict-word'>{'PASS' if passed else 'FAIL'}</div><div class='why'>{why}</div></section>",
        _run_info_html(report),
        _non_finite_html(report.get("non_finite") or {}),
    ]
    rows_note = _subsample_note(checks)
    if rows_note:
        parts.append(f"<div class='note'>{rows_note}</div>")

    parts.append("<h2>Checks</h2><table><tr><th>check</th><th>score</th><th>95% interval</th><th>threshold</th>"
                 "<th>result</th><th>rows seen</th><th>summary</th></tr>")
    for c in checks:
        parts.append(
            f"<tr><td><a href='#check-{_esc(c.name)}'>{_esc(c.name)}</a></td><td class='num'>{_num(c.score)}</td>"
            f"<td class='num'>{_interval(c.interval)}</td><td class='num'>{_threshold(c.threshold, c.direction)}</td>"
            f"<td>{_badge(c.passed)}</td><td class='num'>{_num(c.extra.get('rows_seen'))}</td><td>{_esc(c.summary)}</td></tr>"
        )
    parts.append("</table>")

    sections: dict[str, list[CheckResult]] = {}
    for c in checks:
        sections.setdefault(SECTIONS.get(c.name, "Other checks"), []).append(c)
    for title, members in sections.items():
        parts.append(f"<h2>{_esc(title)}</h2>")
        for c in members:
            parts.append(_check_html(c, out_dir))
    if history:
        image = plot_history(history)
        if image:
            parts.append("<h2>Training curves</h2>" + _img(image, "loss curves"))

    parts.append("<h2>Details per check</h2>")
    for c in checks:
        d = c.to_dict()
        body = f"<p>{_esc(c.summary)}</p>"
        if d["details"]:
            body += _table(d["details"])
        extra = {k: v for k, v in d["extra"].items() if k not in ("rows_used",)}
        if extra:
            body += "<details><summary>more</summary><pre>" + _esc(json.dumps(extra, indent=1)[:6000]) + "</pre></details>"
        parts.append(f"<details id='check-{_esc(c.name)}'><summary>{_badge(c.passed)} {_esc(c.name)}</summary>"
                     f"{body}</details>")
    parts.append(f"<p class='muted'>Generated {_esc(report.get('generated_at', ''))} by synthpipe.</p></main></body></html>")
    return "\n".join(parts)


def _check_html(c: CheckResult, out_dir: Path | None) -> str:
    """One check in its section: verdict, summary, note, Data Docs link, figures."""
    parts = [f"<p>{_badge(c.passed)} <b>{_esc(c.name)}</b>: {_esc(c.summary)}</p>"]
    if c.extra.get("note"):
        parts.append(f"<div class='note'>{_esc(c.extra['note'])}</div>")
    docs = c.extra.get("data_docs")
    if docs:
        if not Path(docs).is_absolute():  # relative to the report's folder, as run_expectations writes it
            link = Path(docs).as_posix()
        else:
            link = Path(os.path.relpath(docs, out_dir)).as_posix() if out_dir else Path(docs).resolve().as_uri()
        rows = c.extra.get("data_docs_rows")
        shown = f" (of the {_num(rows)}-row sample)" if rows is not None and rows != c.extra.get("rows_seen") else ""
        parts.append(f"<p class='muted'>Great Expectations Data Docs{shown}: <a href='{_esc(link)}'>{_esc(link)}</a>; "
                     "the suite, to edit and pass back with --expectations: expectations.json.</p>")
    elif "_files" in c.extra:
        names = ", ".join(_esc(n) for n in c.extra["_files"])
        parts.append(f"<p class='muted'>Saved next to this report: {names}.</p>")
    for i, figure in enumerate(c.figures):
        image = _render_figure(figure)
        if not image:
            continue
        spec = figure if isinstance(figure, dict) else {}
        title = spec.get("title")
        if title:
            parts.append(f"<h2>{_esc(title)}</h2>")
        if spec.get("caption"):
            parts.append(f"<p class='muted'>{_esc(spec['caption'])}</p>")
        parts.append(_img(image, title or f"{c.name} figure {i + 1}"))
    return "\n".join(parts)


def _non_finite_html(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    rows = "".join(f"<tr><td>{_esc(col)}</td><td class='num'>{_num(n)}</td></tr>" for col, n in counts.items())
    return ("<h2>Non-finite source values</h2><p class='muted'>inf / -inf in numeric source columns, read as nulls "
            "(the synthetic table has none).</p><table><tr><th>column</th><th>non-finite values</th></tr>"
            f"{rows}</table>")


def _subsample_note(checks: list[CheckResult]) -> str:
    used = next((c.extra["rows_used"] for c in checks if c.extra.get("subsampled")), None)
    if not used:
        return ""
    text = ", ".join(f"{_esc(name)} {u:,} of {t:,}" for name, (u, t) in used.items())
    full = [c.name for c in checks if c.extra.get("coverage") in ("all", "stream")]
    tail = f"; {', '.join(map(_esc, full))} used every row" if full else ""
    return (f"Large tables: the model-based and sdmetrics checks used a uniform random subsample ({text} rows){tail}. "
            "The rows seen column says how many synthetic rows each check looked at.")


def _run_info_html(report: dict) -> str:
    skip = {"checks", "passed", "failed_checks", "timings", "params"}
    rows = []
    for key, value in report.items():
        if key in skip or value is None:
            continue
        rows.append(f"<tr><td>{_esc(key)}</td><td>{_esc(_short(value, 300))}</td></tr>")
    timings = report.get("timings")
    if isinstance(timings, dict) and timings:
        text = ", ".join(f"{_esc(k.removesuffix('_s'))} {_num(v, 1)} s" for k, v in timings.items())
        rows.append(f"<tr><td>timings</td><td>{text}</td></tr>")
    html_rows = "<h2>Run</h2><table class='kv'>" + "".join(rows) + "</table>" if rows else ""
    params = report.get("params")
    if params:
        html_rows += ("<details><summary>generator parameters</summary><pre>"
                      + _esc(json.dumps(params, indent=1, default=str)) + "</pre></details>")
    return html_rows
