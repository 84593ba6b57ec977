"""The suite's table drives the run, the report and the verdict: no check is special-cased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.errors import ConfigError
from synthpipe.validators import (
    ALL_CHECKS,
    CHECKS,
    CheckResult,
    checks_passed,
    run_validation,
    suite,
    verdict,
)
from synthpipe.validators.base import gate
from synthpipe.validators.config import ValidationConfig
from synthpipe.validators.report import build_report, render_html, write_report

FAST = {"bootstrap_reps": 10, "cv_folds": 2}


def test_table_describes_every_check():
    names = [n for c in CHECKS for n in c.names]
    assert len(names) == len(set(names))
    assert set(ALL_CHECKS) == set(names) - {"holdout_log_likelihood"}
    config = ValidationConfig()
    for check in CHECKS:
        for name, (field, direction) in check.gates.items():
            assert direction in ("higher", "lower")
            assert field is None or isinstance(getattr(config, field), float), name
    by_name = {c.name: c for c in CHECKS}
    assert by_name["privacy_dcr"].needs_holdout and by_name["prior_shift"].needs_target
    assert by_name["expectations"].coverage == "stream"


def test_scored_results_take_their_verdict_from_the_gate():
    for score, threshold, direction in [(0.8, 0.7, "higher"), (0.6, 0.7, "higher"), (0.3, 0.5, "lower"),
                                        (0.7, 0.5, "lower"), (float("nan"), 0.5, "higher"), (0.2, None, "lower")]:
        result = CheckResult.scored("x", score, threshold, "s", direction=direction)
        assert result.passed == gate(score, threshold, direction)


def test_one_verdict_everywhere():
    checks = [CheckResult.scored("a", 0.9, 0.5, "fine"), CheckResult.scored("c", 0.1, 0.5, "broken"),
              CheckResult("n", float("nan"), None, None, "n/a", extra={"applicable": False})]
    v = verdict(checks)
    report = build_report(checks)
    assert (v.passed, v.failed, v.not_applicable) == (False, ["c"], ["n"])
    assert report["passed"] is checks_passed(checks) is v.passed and report["failed_checks"] == v.failed
    assert "FAIL</div>" in render_html(report, checks) and "1 of 2 gated checks passed" in render_html(report, checks)


def test_holdout_checks_do_not_apply_without_one(acs12):
    checks = run_validation(acs12.iloc[:400], acs12.iloc[400:800],
                            config={**FAST, "checks": ["privacy_dcr", "privacy_membership", "quality"]})
    by_name = {c.name: c for c in checks}
    assert by_name["privacy_dcr"].passed is None and by_name["privacy_membership"].passed is None
    assert by_name["privacy_membership"].threshold == ValidationConfig().membership_auc_max
    assert by_name["quality"].extra["rows_seen"] == 400


def test_a_new_row_in_the_table_is_run_reported_and_gated(acs12, tmp_path, monkeypatch):
    """Adding a check is adding a row: the runner, report.json and report.html need no change."""

    def row_count_ratio(x: suite.Inputs) -> CheckResult:
        ratio = len(x.synthetic) / len(x.real)
        figure = {"name": "ratio", "kind": "distributions", "title": "Row count ratio",
                  "caption": "synthetic over real rows",
                  "panels": [{"column": "rows", "type": "categorical", "categories": ["rows"],
                              "real": [1.0], "synthetic": [ratio], "score": None}]}
        return CheckResult.scored("row_ratio", ratio, 0.9, f"ratio {ratio:.2f}", figures=[figure])

    extra = suite.Check("row_ratio", row_count_ratio, "Size", "quality_min", "higher", coverage="all")
    monkeypatch.setattr(suite, "CHECKS", (*suite.CHECKS, extra))
    monkeypatch.setattr(suite, "SECTIONS", {**suite.SECTIONS, "row_ratio": "Size"})
    checks = run_validation(acs12.iloc[:500], acs12.iloc[500:700], config={**FAST, "checks": ["quality", "row_ratio"]})
    assert [c.name for c in checks] == ["quality", "row_ratio"]
    ratio = checks[1]
    assert ratio.passed is False and ratio.extra["rows_seen"] == 200
    report = write_report(tmp_path, checks, {})
    assert report["failed_checks"] == ["row_ratio"]
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Size</h2>" in page and "<h2>Row count ratio</h2>" in page and "ratio 0.40" in page
    assert page.count('src="data:image/png;base64,') >= 3  # quality's two overview figures and the new one


def test_expectations_json_is_written_once_per_place(acs12, tmp_path):
    checks = run_validation(acs12.iloc[:500], acs12.iloc[500:1000],
                            config={**FAST, "checks": ["expectations"], "out_dir": tmp_path})
    suite_file = tmp_path / "expectations.json"
    assert suite_file.exists()
    suite_file.write_text("written by the check")  # marks the check's copy
    write_report(tmp_path, checks, {})
    assert suite_file.read_text() == "written by the check"  # the report did not write it a second time
    other = tmp_path / "elsewhere"
    write_report(other, checks, {})
    assert '"expectations"' in (other / "expectations.json").read_text()


def test_one_check_by_name(acs12):
    from synthpipe.validators import run_check

    copies = run_check("privacy_exact_copies", acs12.iloc[:500], acs12.iloc[:100], config={"bootstrap_reps": 0})
    assert copies.name == "privacy_exact_copies" and copies.score == 1.0 and copies.passed is False
    with pytest.raises(ConfigError, match="no_such"):
        run_check("no_such", acs12, acs12)


def test_suite_checks_are_plain_functions(acs12):
    """Benchmarks call single checks directly, without the suite."""
    from synthpipe.generators.schema import infer_schema
    from synthpipe.validators.encoding import compared_columns
    from synthpipe.validators.privacy import exact_copies

    real, synthetic = acs12.iloc[:500], pd.concat([acs12.iloc[:50], acs12.iloc[500:950]], ignore_index=True)
    columns = compared_columns(infer_schema(acs12), real, synthetic)
    result = exact_copies(real, synthetic, columns, ValidationConfig(bootstrap_reps=0))
    assert result.extra["copied_rows"] >= 50 and np.isfinite(result.score)
