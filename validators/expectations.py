"""A great-expectations (GX Core 1.x) suite profiled from the source, run on the synthetic table.

The suite says what any table standing in for the source must satisfy: the same columns in the
same order, the same types, null fractions within a tolerance, numbers within the source's
range, only known categories, unique IDs, and distribution bounds (means within a band, spreads
within a factor of two, the same most common category). It is saved as JSON
(`expectations.json`) for users to edit and pass back (`load_suite`), and run through a GX
Checkpoint; with an output directory the run also leaves GX Data Docs there.

The row-level expectations (ranges, category sets, null fractions) take their values from the
schema, which a run infers with the whole-table profile: a rare category or an extreme value that
the bounded sample missed is still allowed, and a value beyond the whole table's range still
fails. The sample only adds what the schema lacks (a schema given without bounds) and the
aggregate bands (mean, spread, leading categories), which a uniform sample estimates well.

Two GX limits shape the table handed to GX: type lists cannot name pandas' CategoricalDtype or
a time-zone-aware datetime dtype, so categorical columns are validated on their values (as
object columns) and aware datetimes as naive UTC (the time zone is recorded in the
expectation's meta). Import of GX is slow (~5 s), so it happens lazily, once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synthpipe.generators.errors import ConfigError
from synthpipe.generators.schema import ColumnKind, TableSchema, infer_schema
from synthpipe.validators.base import CheckResult, jsonable, naive_utc
from synthpipe.validators.config import ValidationConfig

SUITE_NAME = "synthpipe_source_profile"
MAX_VALUE_SET = 10_000  # larger category sets are not listed (the suite would be megabytes)
MODE_SHARE_MARGIN = 0.1  # categories within 10 points of the top share may be the synthetic mode

INT_TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
             "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype"]
FLOAT_TYPES = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype"]
STR_TYPES = ["str", "StringDtype"]
BOOL_TYPES = ["bool", "BooleanDtype"]
DATETIME_TYPES = ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"]


def gx_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as GX can type-check it: categoricals as their values, aware datetimes as naive UTC."""
    out = {}
    for name in frame.columns:
        series = frame[name]
        if isinstance(series.dtype, pd.CategoricalDtype):
            try:
                series = series.astype(series.cat.categories.dtype)
            except (TypeError, ValueError):
                series = series.astype(object)
        elif isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        out[name] = series
    return pd.DataFrame(out, index=frame.index)


def _type_family(series: pd.Series, kind: ColumnKind) -> list[str]:
    dtype = series.dtype
    if kind == ColumnKind.DATETIME:
        return DATETIME_TYPES
    if kind == ColumnKind.NUMERICAL:
        return FLOAT_TYPES + INT_TYPES
    if pd.api.types.is_bool_dtype(dtype):
        return BOOL_TYPES
    if pd.api.types.is_integer_dtype(dtype):
        return INT_TYPES
    if pd.api.types.is_float_dtype(dtype):
        return FLOAT_TYPES + INT_TYPES
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return DATETIME_TYPES
    values = series.dropna()
    if kind == ColumnKind.BOOLEAN or (len(values) and values.map(type).isin([bool, np.bool_]).all()):
        return BOOL_TYPES
    return STR_TYPES


def _expect(kind: str, why: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": jsonable(kwargs), "meta": {"why": why}}


def suite_dict(real: pd.DataFrame, schema: TableSchema | None = None, config: ValidationConfig | None = None) -> dict:
    """The profiled suite as plain data (the JSON written to expectations.json)."""
    config = config or ValidationConfig()
    schema = schema or infer_schema(real)
    frame = gx_frame(real)
    tol = config.null_tolerance
    exps: list[dict[str, Any]] = [
        _expect("expect_table_columns_to_match_ordered_list", "the synthetic table has the source's columns, in order",
                column_list=[str(c) for c in real.columns]),
    ]
    for column in schema.columns:
        name = column.name
        if name not in frame.columns:
            continue
        series = frame[name]
        kind = column.kind
        null_fraction = float(column.null_fraction)  # the whole table's, when the schema had the profile
        if kind == ColumnKind.CONSTANT and column.constant_value is None:
            exps.append(_expect("expect_column_values_to_be_null", "an all-null source column stays null", column=name))
            continue
        exps.append(_expect("expect_column_values_to_be_in_type_list",
                            f"values keep the source's type (source dtype {real[name].dtype})",
                            column=name, type_list=_type_family(series, kind)))
        if null_fraction == 0:
            exps.append(_expect("expect_column_values_to_not_be_null", "the source column has no nulls", column=name))
        else:
            exps.append(_expect("expect_column_values_to_not_be_null",
                                f"null fraction at most {null_fraction:.3f} + {tol}", column=name,
                                mostly=round(max(0.0, 1 - null_fraction - tol), 6)))
            if null_fraction - tol > 0:
                exps.append(_expect("expect_column_values_to_be_null", f"null fraction at least {null_fraction:.3f} - {tol}",
                                    column=name, mostly=round(null_fraction - tol, 6)))
        values = series.dropna()
        if kind == ColumnKind.ID:
            exps.append(_expect("expect_column_values_to_be_unique", "identifiers are unique", column=name))
        elif kind == ColumnKind.CONSTANT:
            exps.append(_expect("expect_column_values_to_be_in_set", "a constant source column stays constant",
                                column=name, value_set=[column.constant_value]))
        elif kind in (ColumnKind.NUMERICAL, ColumnKind.INTEGER) and len(values):
            numeric = pd.to_numeric(values, errors="coerce").astype(float)
            lo, hi = _widened(float(numeric.min()), float(numeric.max()), column.min, column.max, float)
            if kind == ColumnKind.INTEGER:
                lo, hi = int(lo), int(hi)
            exps.append(_expect("expect_column_values_to_be_between", "values within the source's range",
                                column=name, min_value=lo, max_value=hi))
            mean, sd = float(numeric.mean()), float(numeric.std(ddof=0))
            band = config.mean_band_sd * sd
            exps.append(_expect("expect_column_mean_to_be_between",
                                f"mean within {config.mean_band_sd} source standard deviations of the source mean {mean:.4g}",
                                column=name, min_value=mean - band, max_value=mean + band))
            if sd > 0:
                exps.append(_expect("expect_column_stdev_to_be_between", f"spread within a factor 2 of the source's {sd:.4g}",
                                    column=name, min_value=sd / 2, max_value=sd * 2))
        elif kind == ColumnKind.DATETIME and len(values):
            as_dt = pd.to_datetime(values, errors="coerce", format="mixed")
            lo, hi = _widened(as_dt.min(), as_dt.max(), column.min, column.max, naive_utc)
            meta_tz = f" (source time zone {column.timezone}; compared in UTC)" if column.timezone else ""
            exps.append(_expect("expect_column_values_to_be_between", "datetimes within the source's range" + meta_tz,
                                column=name, min_value=lo.isoformat(), max_value=hi.isoformat()))
        elif kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN) and len(values):
            categories = _value_set(column.categories, values)
            if len(categories) <= MAX_VALUE_SET:
                exps.append(_expect("expect_column_values_to_be_in_set", "only categories the source has",
                                    column=name, value_set=sorted(categories, key=str)))
            share = values.value_counts(normalize=True)
            if len(share) >= 2:
                modes = share[share >= share.iloc[0] - MODE_SHARE_MARGIN].index.tolist()
                exps.append(_expect("expect_column_most_common_value_to_be_in_set",
                                    f"the most common value is one of the source's leading categories (within "
                                    f"{MODE_SHARE_MARGIN:.0%} of the top share {share.iloc[0]:.1%})",
                                    column=name, value_set=sorted(modes, key=str)))
    return {
        "name": SUITE_NAME,
        "expectations": exps,
        "meta": {"profiled_rows": len(real), "generated_by": "synthpipe.validators.expectations.build_suite",
                 "notes": "Edit freely and pass back with --expectations FILE."},
    }


def _widened(lo: Any, hi: Any, schema_lo: Any, schema_hi: Any, convert: Any) -> tuple[Any, Any]:
    """The sample's range widened to the schema's bounds (the whole table's, in a run)."""
    if schema_lo is not None:
        lo = min(lo, convert(schema_lo))
    if schema_hi is not None:
        hi = max(hi, convert(schema_hi))
    return lo, hi


def _value_set(known: list[Any] | None, values: pd.Series) -> list[Any]:
    """The schema's categories (the whole table's, in a run), then any value of the sample they lack."""
    out = list(known or [])
    seen = {(type(v) is bool, v) for v in out}
    for value in pd.unique(values).tolist():
        if (type(value) is bool, value) not in seen:
            seen.add((type(value) is bool, value))
            out.append(value)
    return out


def build_suite(real: pd.DataFrame, schema: TableSchema | None = None, config: ValidationConfig | None = None):
    """A GX ExpectationSuite profiled from the source table."""
    return suite_from_dict(suite_dict(real, schema, config))


def suite_from_dict(data: dict, source: str = "the suite"):
    """A GX ExpectationSuite from plain data, raising ConfigError on the first invalid expectation.

    (GX's own constructor logs invalid expectations and drops them, which would silently weaken
    a user-edited suite.)
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    expectations = []
    for i, e in enumerate(data.get("expectations", [])):
        label = f"{source}: expectation #{i + 1} ({e.get('type') if isinstance(e, dict) else e!r})"
        if not isinstance(e, dict) or "type" not in e:
            raise ConfigError(f"{label} must be an object with a 'type' and 'kwargs'")
        try:
            expectations.append(ExpectationConfiguration(
                type=e["type"], kwargs=e.get("kwargs") or {}, meta=e.get("meta")).to_domain_obj())
        except Exception as exc:  # GX raises several types (not found, pydantic validation)
            raise ConfigError(f"{label} is invalid: {str(exc).splitlines()[0]}") from None
    return gx.ExpectationSuite(name=data.get("name") or SUITE_NAME, expectations=expectations, meta=data.get("meta"))


def suite_json(suite: Any) -> str:
    """The suite as indented JSON text (the format `load_suite` reads), without GX-assigned ids."""
    data = suite if isinstance(suite, dict) else suite.to_json_dict()
    return json.dumps(_strip_ids(data), indent=2, default=str)


def save_suite(suite: Any, path: str | Path) -> Path:
    """Write the suite as indented JSON (the format `load_suite` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(suite_json(suite))
    return path


def _strip_ids(data: dict) -> dict:
    """Drop GX-assigned ids so a suite can be added to a fresh context (and reads cleanly)."""
    data = {k: v for k, v in data.items() if k not in ("id", "notes") or (k == "notes" and v)}
    data["expectations"] = [
        {k: v for k, v in e.items() if k not in ("id", "rendered_content")} for e in data.get("expectations", [])
    ]
    return data


def load_suite(path: str | Path):
    """Read a (possibly user-edited) suite from JSON, with errors that name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"expectations file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"expectations file {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ConfigError(f"expectations file {str(path)!r} must be a JSON object with an 'expectations' list")
    return suite_from_dict(data, f"expectations file {str(path)!r}")


def _context(docs_root: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(docs_root)) if docs_root else gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _observed(result: dict) -> str:
    if "observed_value" in result and result["observed_value"] is not None:
        value = result["observed_value"]
        return json.dumps(jsonable(value))[:200]
    if "unexpected_count" in result:
        text = f"{result.get('unexpected_count')} unexpected ({(result.get('unexpected_percent') or 0):.2f}%)"
        examples = result.get("partial_unexpected_list") or []
        if examples:
            text += ", e.g. " + ", ".join(map(str, examples[:5]))
        return text
    return ""


# GX 1.x Data Docs print some observed values unescaped (a table's column list, for one), so a
# column named <script>...</script> would run in the reader's browser. Every page therefore gets
# a policy that runs no script at all (GX's own scripts only add table widgets, and come from
# CDNs that serve anyone's code), loads nothing from elsewhere but styles and fonts, and cannot
# submit forms or change its base URL.
DATA_DOCS_CSP = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; "
                 "frame-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline' https:; font-src 'self' https: data:")


def harden_data_docs(root: Path) -> None:
    """Put `DATA_DOCS_CSP` first in the head of every Data Docs page, before any data value."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{DATA_DOCS_CSP}">'
    for page in root.rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace").replace("\x00", "\ufffd")
        head = text.find("<head>")
        text = text[: head + 6] + meta + text[head + 6:] if head >= 0 else meta + text
        page.write_text(text, encoding="utf-8")


class _Checkpoint:
    """One GX context, suite and checkpoint, run on as many DataFrames as needed (the bounded
    sample, or each streamed batch); with `docs_dir` the runs update Data Docs there."""

    def __init__(self, data: dict, docs_dir: Path | None = None):
        import great_expectations as gx

        self.workdir = docs_dir
        context = _context(docs_dir)
        batch = (context.data_sources.add_pandas("synthetic").add_dataframe_asset("synthetic_table")
                 .add_batch_definition_whole_dataframe("whole_table"))
        self.suite = context.suites.add(suite_from_dict(data))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="synthetic_vs_source_profile", data=batch, suite=self.suite))
        actions = []
        if docs_dir:
            from great_expectations.checkpoint import UpdateDataDocsAction

            actions = [UpdateDataDocsAction(name="data_docs")]
        self.checkpoint = context.checkpoints.add(gx.Checkpoint(
            name="synthpipe_expectations", validation_definitions=[definition], actions=actions,
            result_format={"result_format": "SUMMARY"}))

    def run(self, frame: pd.DataFrame) -> list:
        outcome = self.checkpoint.run(batch_parameters={"dataframe": gx_frame(frame)})
        return [r for validation in outcome.run_results.values() for r in validation.results]


def _stream(data: dict, synthetic_path: str | Path, batch_rows: int) -> tuple[dict[str, list[dict]], int, int]:
    """Run the suite on every batch of the dataset; (merged results by key, rows, batches).

    Expectations recomputed from streamed statistics (means, spreads, modes, uniqueness) are
    left out of the per-batch GX runs, which then cost less."""
    from synthpipe.validators.streaming import STREAMED_STATS, SuiteStream, dataset_batches, key

    stream = SuiteStream([{"type": e.configuration.type, "kwargs": dict(e.configuration.kwargs)}
                          for e in suite_from_dict(data).expectations])
    per_batch = [e for e in data.get("expectations", []) if e.get("type") not in STREAMED_STATS]
    runner = _Checkpoint({**data, "expectations": per_batch}) if per_batch else None
    for frame in dataset_batches(synthetic_path, batch_rows):
        frame = gx_frame(frame)
        results = runner.run(frame) if runner else []
        stream.add(frame, [(key(r.expectation_config.type, r.expectation_config.kwargs), bool(r.success),
                            dict(r.result or {})) for r in results])
    return stream.results(), stream.rows, stream.batches


def run_expectations(synthetic: pd.DataFrame, suite: Any, out_dir: str | Path | None = None,
                     config: ValidationConfig | None = None, synthetic_path: str | Path | None = None) -> CheckResult:
    """Validate the synthetic table against `suite` through a GX Checkpoint: the check `expectations`.

    The score is the share of expectations met; the gate is `expectations_min` (every one by
    default). With `synthetic_path` (the synthetic Parquet dataset directory) the suite runs on
    every row, streamed batch by batch and merged (see streaming.py); `synthetic` is then the
    bounded sample, used for the Data Docs and for aggregate expectations that cannot be merged.
    Each expectation's `rows_seen` says which. With `out_dir`, GX Data Docs (of the run on
    `synthetic`) are copied to `out_dir/data_docs/`.
    """
    from synthpipe.validators.streaming import key

    config = config or ValidationConfig()
    data = _strip_ids(suite if isinstance(suite, dict) else suite.to_json_dict())
    workdir = Path(tempfile.mkdtemp(prefix="synthpipe-gx-")) if out_dir else None
    try:
        sample_results = _Checkpoint(data, workdir).run(synthetic)
        docs_index = None
        if workdir and out_dir:
            site = workdir / "gx" / "uncommitted" / "data_docs" / "local_site"
            if site.exists():
                target = Path(out_dir) / "data_docs"
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(site, target)
                harden_data_docs(target)
                # relative to the report: out_dir is a staging folder that the run renames at the end
                docs_index = "data_docs/index.html"
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    merged, streamed_rows, batches = ({}, 0, 0)
    if synthetic_path is not None:
        merged, streamed_rows, batches = _stream(data, synthetic_path, config.stream_batch_rows)

    rows = []
    for r in sample_results:
        cfg = r.expectation_config
        kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "column")}
        exception = (r.exception_info or {}).get("exception_message") if isinstance(r.exception_info, dict) else None
        whole = merged.get(key(cfg.type, cfg.kwargs)) or []
        full = whole.pop(0) if whole else None
        rows.append({
            "success": bool(full["success"]) if full else bool(r.success),
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column"),
            "observed": (_observed({"observed_value": full["observed"]}) if full and not isinstance(full["observed"], str)
                         else full["observed"] if full else _observed(r.result or {}) or (exception or "")),
            "expected": json.dumps(jsonable(kwargs))[:300],
            "rows_seen": int(full["rows_seen"]) if full else len(synthetic),
            "why": (cfg.meta or {}).get("why", ""),
        })
    details = pd.DataFrame(rows, columns=["success", "expectation", "column", "observed", "expected", "rows_seen", "why"])
    details = details.sort_values("success", kind="stable").reset_index(drop=True)
    n = len(details)
    met = int(details["success"].sum()) if n else 0
    score = met / n if n else 1.0
    failed = details[~details["success"]]
    total = streamed_rows if synthetic_path is not None else len(synthetic)
    summary = f"{met} of {n} expectations met"
    summary += f" over all {total:,} synthetic rows (streamed in {batches} batches)" if synthetic_path is not None \
        else f" over {total:,} synthetic rows"
    sampled = details.loc[details["rows_seen"] < total, "expectation"].tolist()
    if sampled:
        summary += f"; {len(sampled)} aggregate expectation(s) checked on a sample only"
    if len(failed):
        listed = [f"{e.removeprefix('expect_')} on {c}" if c else e.removeprefix("expect_")
                  for e, c in zip(failed["expectation"], failed["column"])]
        summary += "; failed: " + "; ".join(listed[:6]) + (f" (+{len(listed) - 6} more)" if len(listed) > 6 else "")
    return CheckResult.scored(
        name="expectations", score=score, threshold=config.expectations_min, summary=summary, details=details,
        direction="higher",
        extra={"data_docs": docs_index, "n_expectations": n, "n_failed": n - met,
               "failed_columns": sorted({str(c) for c in failed["column"].dropna()}),
               "rows_seen": total, "coverage": "stream" if synthetic_path is not None else "all",
               "rows_seen_min": int(details["rows_seen"].min()) if n else total,
               "sampled_expectations": sampled,
               "data_docs_rows": len(synthetic)},
    )


def expectations_check(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    config: ValidationConfig,
    holdout: pd.DataFrame | None = None,
    synthetic_path: str | Path | None = None,
) -> CheckResult:
    """The suite check of a run: profiled from the whole source (training + holdout rows), so its
    ranges and category sets are the source's, the same bounds the generator's schema was
    inferred with (or the user's suite, `expectations_suite`), run on every synthetic row.

    The suite is written once per place: into `config.out_dir` here, and by write_report into
    the report's directory when that is another one (`extra["_files"]`, `extra["_written"]`).
    """
    source = pd.concat([real, holdout], ignore_index=True) if holdout is not None else real
    suite = load_suite(config.expectations_suite) if config.expectations_suite else build_suite(source, schema, config)
    written = {}
    if config.out_dir is not None:
        written["expectations.json"] = str(save_suite(suite, Path(config.out_dir) / "expectations.json").resolve())
    result = run_expectations(synthetic, suite, config.out_dir, config, synthetic_path=synthetic_path)
    result.extra["suite"] = str(config.expectations_suite) if config.expectations_suite else "profiled from the source table"
    result.extra["_files"] = {"expectations.json": suite_json(suite)}
    result.extra["_written"] = written
    return result
