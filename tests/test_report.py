"""run_validation end to end, report.json's contract, report.html's content, and the page in a real browser."""

from __future__ import annotations

import html
import json
import re
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from synthpipe.generators.errors import ConfigError, DataError
from synthpipe.validators import ALL_CHECKS, CheckResult, checks_passed, run_validation
from synthpipe.validators.base import not_applicable
from synthpipe.validators.report import build_report, markdown_summary, write_report

RUN_INFO = {
    "generator": "vae", "params": {"epochs": 3, "batch_size": 500}, "seed": 7, "source": "examples/acs12.csv",
    "rows": 700, "timings": {"ingest_s": 0.1, "fit_s": 12.5, "sample_s": 0.4, "validate_s": 20.0},
}
HISTORY = {"epoch": [1, 2, 3, 4, 5, 6], "loss": [5.0, 4.1, 3.5, 3.2, 3.0, 2.9],
           "val_loss": [float("nan"), float("nan"), 3.9, float("nan"), float("nan"), 3.4]}


@pytest.fixture(scope="module")
def validated(acs12, tmp_path_factory):
    """Every check on a random split of ACS (train 700, holdout 300, 'synthetic' 1000 fresh rows)."""
    out = tmp_path_factory.mktemp("report")
    docs = tmp_path_factory.mktemp("docs")
    idx = np.random.default_rng(5).permutation(len(acs12))
    train, holdout, fresh = (acs12.iloc[i].reset_index(drop=True) for i in (idx[:700], idx[700:1000], idx[1000:]))
    likelihood = {"kind": "exact", "per_row": np.random.default_rng(0).normal(-15, 2, len(holdout)),
                  "n_columns": 13, "per_column": None}
    checks = run_validation(train, fresh, holdout=holdout, target="married", likelihood=likelihood,
                            config={"bootstrap_reps": 30, "cv_folds": 3, "out_dir": docs})
    report = write_report(out, checks, RUN_INFO, HISTORY)
    return out, checks, report, docs


def test_every_check_runs_and_applies(validated):
    _, checks, _, _ = validated
    names = [c.name for c in checks]
    assert set(ALL_CHECKS) <= set(names) and "holdout_log_likelihood" in names
    for c in checks:
        assert "error" not in c.extra, c.summary
        if c.name == "privacy_rare_values" and c.passed is None:  # acs12 has no rare category
            assert "no categorical value is held by fewer than 5 training rows" in c.summary
            continue
        if c.name != "holdout_log_likelihood":
            assert c.passed is not None, f"{c.name} did not apply: {c.summary}"
        if c.name != "expectations":
            assert c.interval is not None, c.name
    # a fresh sample of the same population passes the shift and privacy gates
    by_name = {c.name: c for c in checks}
    for name in ("quality", "diagnostic", "covariate_shift", "prior_shift", "concept_shift",
                 "privacy_exact_copies", "privacy_dcr", "privacy_membership"):
        assert by_name[name].passed is True, by_name[name].summary


def test_report_json_contract(validated):
    out, checks, report, _ = validated
    on_disk = json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert on_disk == report
    assert isinstance(report["passed"], bool) and report["passed"] == checks_passed(checks)
    for key in ("generator", "params", "seed", "source", "rows"):
        assert report[key] == RUN_INFO[key]
    assert set(report["timings"]) == {"ingest_s", "fit_s", "sample_s", "validate_s"}
    by_name = {c["name"]: c for c in report["checks"]}
    assert "quality" in by_name
    for c in report["checks"]:
        assert {"name", "score", "threshold", "passed", "interval", "summary", "direction", "details"} <= set(c)
    assert report["failed_checks"] == [c["name"] for c in report["checks"] if c["passed"] is False]
    assert "_files" not in by_name["expectations"]["extra"]


def test_suite_and_data_docs_are_saved(validated):
    out, _, _, docs = validated
    from synthpipe.validators.expectations import load_suite

    assert len(load_suite(out / "expectations.json").expectations) > 20  # next to the report, always
    assert (docs / "expectations.json").exists() and (docs / "data_docs" / "index.html").exists()
    page = (out / "report.html").read_text()
    assert "data_docs/index.html" in page


def test_verdict_ignores_checks_that_do_not_apply():
    ok = CheckResult("a", 0.9, 0.5, True, "fine")
    na = not_applicable("b", "needs a holdout")
    bad = CheckResult("c", 0.1, 0.5, False, "broken", direction="higher")
    assert build_report([ok, na])["passed"] is True
    report = build_report([ok, na, bad], {"seed": 1})
    assert report["passed"] is False and report["failed_checks"] == ["c"] and report["seed"] == 1


def test_html_is_self_contained_and_complete(validated):
    out, checks, report, _ = validated
    page = (out / "report.html").read_text()
    verdict = "PASS" if report["passed"] else "FAIL"
    assert page.index(f">{verdict}</div>") < page.index("<h2>Checks</h2>")  # the verdict comes first
    assert not re.search(r"""(src|href)=["']?https?://""", page)  # readable offline
    assert "<script" not in page
    images = re.findall(r'src="data:image/png;base64,', page)
    assert len(images) >= 5  # distributions, correlations, shifted columns, privacy, loss curves
    for heading in ("Column distributions", "Association differences", "Most shifted columns", "Privacy",
                    "Training curves", "Held-out likelihood", "Expectations"):
        assert f"<h2>{heading}" in page
    assert "Theis" in page
    for c in checks:
        assert f"id='check-{c.name}'" in page
    assert "12.5 s" in page  # timings rendered


def test_subsampling_is_reported(acs12):
    checks = run_validation(acs12.iloc[:600], acs12.iloc[600:1200], config={
        "max_rows": 300, "checks": ["covariate_shift", "privacy_exact_copies"], "bootstrap_reps": 20, "cv_folds": 3})
    shift = next(c for c in checks if c.name == "covariate_shift")
    assert shift.extra["subsampled"] is True and shift.extra["rows_used"]["real"] == [300, 600]
    copies = next(c for c in checks if c.name == "privacy_exact_copies")
    assert copies.extra["rows"]["synthetic"] == 600  # exact copies always see every row
    page_report = build_report(checks)
    from synthpipe.validators.report import render_html

    assert "subsample" in render_html(page_report, checks)


def test_markdown_summary(validated):
    _, checks, report, _ = validated
    text = markdown_summary(report)
    assert text.startswith("## synthpipe validation: **")
    assert ("PASS" if report["passed"] else "FAIL") in text.splitlines()[0]
    for c in checks:
        assert f"| {c.name} |" in text
    assert "fit 12.5 s" in text


def test_configuration_errors_name_the_problem(acs12):
    with pytest.raises(ConfigError, match="no_such_check"):
        run_validation(acs12, acs12, config={"checks": ["no_such_check"]})
    with pytest.raises(ConfigError, match="quality_minimum"):
        run_validation(acs12, acs12, config={"quality_minimum": 0.5})
    with pytest.raises(ConfigError, match="'salary'"):
        run_validation(acs12, acs12, target="salary")
    with pytest.raises(DataError, match="synthetic table has no rows"):
        run_validation(acs12, acs12.iloc[:0])


@pytest.mark.browser
def test_report_renders_in_headless_chromium(validated, tmp_path, chromium):
    from PIL import Image

    out, _, report, _ = validated
    url = (out / "report.html").resolve().as_uri()
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000", url],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout

    verdict = "PASS" if report["passed"] else "FAIL"
    assert re.search(rf"id=\"verdict-word\"[^>]*>{verdict}<", dom)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not a blank page
    banner = np.array([0x2E, 0x7D, 0x32] if report["passed"] else [0xC6, 0x28, 0x28], dtype=float)
    top = pixels[:250].reshape(-1, 3)
    assert (np.abs(top - banner).sum(axis=1) < 30).mean() > 0.05  # the verdict banner is on screen, at the top


HOSTILE_SCRIPT = "<script>document.title='XSS-RAN'</script>"
HOSTILE_IMG = "\"><img src=x onerror=document.title='XSS-RAN'>"
HOSTILE_VALUES = [HOSTILE_IMG, "=cmd|' /C calc'!A0", "../../etc/passwd", "nul\x00byte", HOSTILE_SCRIPT]


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    """A table whose column names and categories are markup, formulas, paths and NUL bytes."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    n = 400
    table = pd.DataFrame({HOSTILE_SCRIPT: rng.choice(HOSTILE_VALUES, n), HOSTILE_IMG: rng.normal(0, 1, n),
                          "../../etc/passwd": rng.integers(0, 9, n), "nul\x00col": rng.choice(["a", "b"], n)})
    out = root / "out"
    checks = run_validation(table.iloc[:200], table.iloc[200:], config={
        "bootstrap_reps": 5, "cv_folds": 2, "out_dir": out,
        "checks": ["quality", "covariate_shift", "privacy_exact_copies", "expectations"]})
    report = write_report(out, checks, {"source": {"path": "t.csv", "infinities": {HOSTILE_SCRIPT: 3, "b": 0}}})
    return root, out, report


def _dump_dom(chromium, path, profile) -> str:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--dump-dom", path.resolve().as_uri()]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def _parse(dom: str) -> _Elements:
    parsed = _Elements()
    parsed.feed(dom)
    return parsed


def test_non_finite_counts_are_reported(hostile_report):
    _, out, report = hostile_report
    assert report["non_finite"] == {HOSTILE_SCRIPT: 3}
    assert json.loads((out / "report.json").read_text())["non_finite"] == {HOSTILE_SCRIPT: 3}
    page = (out / "report.html").read_text()
    assert "<h2>Non-finite source values</h2>" in page and html.escape(HOSTILE_SCRIPT) in page


def test_no_path_is_built_from_a_data_value(hostile_report):
    root, out, _ = hostile_report
    assert [p.name for p in root.iterdir()] == ["out"]  # nothing written beside the output
    written = [p.relative_to(out).as_posix() for p in out.rglob("*")]
    assert {"report.json", "report.html", "expectations.json", "data_docs/index.html"} <= set(written)
    for name in written:
        assert not any(part in name for part in ("etc", "passwd", "script", "img", "cmd", "nul")), name


@pytest.mark.browser
def test_no_injected_script_runs_in_report_or_data_docs(hostile_report, tmp_path, chromium):
    _, out, report = hostile_report
    # the detector works: the same payloads in a page that does not escape them do run
    control = tmp_path / "control.html"
    control.write_text(f"<html><head><title>control</title></head><body>{HOSTILE_SCRIPT}{HOSTILE_IMG}</body></html>")
    assert _parse(_dump_dom(chromium, control, tmp_path / "p0")).title == "XSS-RAN"

    dom = _dump_dom(chromium, out / "report.html", tmp_path / "p1")
    page = _parse(dom)
    assert page.title == f"synthpipe report: {'PASS' if report['passed'] else 'FAIL'}"
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed")]
    assert not [(t, a) for t, a in page.tags if any(k.startswith("on") for k in a)]
    assert all(a.get("src", "").startswith("data:image/png;base64,") for t, a in page.tags if t == "img")
    assert HOSTILE_SCRIPT in html.unescape(dom) and "=cmd|' /C calc'!A0" in html.unescape(dom)  # shown as text

    pages = sorted((out / "data_docs").rglob("*.html"))
    assert len(pages) >= 3  # index, the suite, the validation run
    for k, docs_page in enumerate(pages):
        assert "XSS-RAN" not in _parse(_dump_dom(chromium, docs_page, tmp_path / f"d{k}")).title, docs_page
