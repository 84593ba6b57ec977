"""The `synthpipe` command.

Heavy libraries (torch, prefect, sdmetrics) are imported only inside the subcommands, so
`synthpipe --help` answers at once and usage errors and unreadable inputs are reported before
the Prefect engine starts.

Exit codes: 0 done and every gate passed; 1 error (message on stderr, no traceback unless
--debug); 2 usage error; 3 output written but a quality gate failed; 130 interrupted (Ctrl-C,
SIGINT); 143 terminated (SIGTERM). An interrupted run unwinds like a failed one: its staging
directory is removed and the previous output is left as it was.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` and staging clean-up runs (Python's
    default SIGTERM action kills the process on the spot, leaving staging directories behind)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthpipe",
        description="Train a generator on a real table, emit a synthetic Parquet dataset, validate it.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage error, 3 output written but a quality gate failed.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="ingest -> train -> sample -> write Parquet -> validate -> report")
    run.add_argument("config", nargs="?", help="YAML config file (flags below override it)")
    run.add_argument("--source", help="CSV/Parquet file, directory or glob, or a database URL")
    run.add_argument("--table", help="SQL table to read (database sources)")
    run.add_argument("--query", help="SQL query to read (database sources)")
    run.add_argument("--generator", help="vae | gan | autoregressive")
    run.add_argument("--rows", type=int, help="rows to emit (default: as many as the source)")
    run.add_argument("--epochs", type=int, help="training epochs (an upper bound with early stopping)")
    run.add_argument("--out", help="output directory (default: out)")
    run.add_argument("--seed", type=int)
    run.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    run.add_argument("--target", help="target column for prior/concept-shift checks")
    run.add_argument("--condition", action="append", metavar="COL=VALUE|COL=LOW..HIGH", help="repeatable")
    run.add_argument("--expectations", help="a saved great-expectations suite (JSON) to validate against")
    run.add_argument("--resume", action="store_true", default=None, help="continue training from the last checkpoint")
    run.add_argument("--registry", help="model registry directory: reuse a model while the data has not shifted")
    run.add_argument("--versioned", action="store_true", default=None, help="write OUT/runs/<id>/ and move OUT/latest")
    run.add_argument("--keep-runs", type=int, help="with --versioned: keep this many runs")
    run.add_argument("--split", help="fine-tuning splits, e.g. train=0.8,val=0.1,test=0.1")
    run.add_argument("--balance", metavar="COLUMN", help="emit a class-balanced table (exact conditional sampling)")
    run.add_argument("--augment", action="store_true", default=None, help="also write real + synthetic rows")
    run.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    _add_runner_flags(run)
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sample = sub.add_parser("sample", help="sample from a saved model")
    sample.add_argument("model_dir")
    sample.add_argument("--rows", type=int, required=True)
    sample.add_argument("--out", required=True, help="output directory (the dataset goes to OUT/synthetic)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--condition", action="append", metavar="COL=VALUE|COL=LOW..HIGH", help="repeatable")
    sample.add_argument("--device", default=None)
    _add_runner_flags(sample)
    sample.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    validate = sub.add_parser("validate", help="validate any synthetic table against a real one")
    validate.add_argument("--real", required=True, help="the real (training) table")
    validate.add_argument("--synthetic", required=True)
    validate.add_argument("--holdout", help="real rows not used for training (privacy, concept shift)")
    validate.add_argument("--target", help="target column for prior/concept-shift checks")
    validate.add_argument("--expectations", help="a saved great-expectations suite (JSON)")
    validate.add_argument("--out", required=True)
    validate.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    serve = sub.add_parser("serve", help="serve a cron-scheduled Prefect deployment (needs a Prefect server)")
    serve.add_argument("config", help="YAML config file of the run to schedule")
    serve.add_argument("--cron", required=True, help='cron expression, e.g. "0 2 * * *"')
    serve.add_argument("--name", help="deployment name (default: the config file's stem)")
    serve.add_argument("--timezone", help="time zone of the cron expression (default UTC)")
    serve.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _add_runner_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, metavar="N", help="emit on a local Dask cluster of N worker processes")
    parser.add_argument("--dask-address", metavar="tcp://HOST:8786", help="emit on an existing Dask cluster")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from synthpipe.generators.errors import SynthpipeError

    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return {"run": _run, "sample": _sample, "validate": _validate, "serve": _serve}[args.command](args)
    except SynthpipeError as exc:
        if args.debug:
            raise
        print(f"synthpipe: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        what = "terminated (SIGTERM)" if terminated else "interrupted (Ctrl-C)"
        print(f"synthpipe: {what}; no output was written, the previous output is unchanged", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except Exception as exc:  # an unexpected failure: one clear line, the traceback with --debug
        if args.debug:
            raise
        if _disk_full(exc):
            where = getattr(args, "out_path", None) or Path(getattr(args, "out", None) or ".").resolve()
            print(f"synthpipe: error: no space left on {Path(where).parent} (writing {where}); "
                  "nothing was written, the previous output is unchanged", file=sys.stderr)
            return EXIT_ERROR
        print(f"synthpipe: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from synthpipe.flows.conditions import parse_conditions
    from synthpipe.flows.config import load_config
    from synthpipe.flows.exports import parse_split_spec
    from synthpipe.flows.preflight import check_generator, check_source

    cfg = load_config(
        args.config,
        source=args.source,
        generator=args.generator,
        rows=args.rows,
        epochs=args.epochs,
        out=args.out,
        seed=args.seed,
        device=args.device,
        target=args.target,
        conditions=parse_conditions(args.condition) or None,
        expectations=args.expectations,
        resume=args.resume,
        progress=args.progress,
        registry=args.registry,
        versioned=args.versioned,
        keep_runs=args.keep_runs,
        split=parse_split_spec(args.split) if args.split else None,
        balance=args.balance,
        augment=args.augment,
        workers=args.workers,
        dask_address=args.dask_address,
    )
    if args.table or args.query:
        cfg.source.table, cfg.source.query = args.table, args.query
    args.out_path = cfg.out_path  # for the "no space left" message
    check_source(cfg.source)  # before the Prefect engine starts
    check_generator(cfg)

    from synthpipe.flows.runners import prefect_defaults

    prefect_defaults()  # before Prefect is imported: it reads its settings once
    from synthpipe.flows.logs import quiet_console
    from synthpipe.flows.pipeline import synthpipe_run

    quiet_console(debug=args.debug)  # the error is printed once, below; tracebacks with --debug
    report = synthpipe_run(cfg.model_dump(by_alias=True))
    _print_verdict(report, cfg.out_path)
    return EXIT_OK if report["passed"] else EXIT_GATE


def _serve(args: argparse.Namespace) -> int:
    from synthpipe.flows.schedule import serve

    serve(args.config, args.cron, name=args.name, timezone=args.timezone)
    return EXIT_OK


def _sample(args: argparse.Namespace) -> int:
    from synthpipe.flows.config import runner_config
    from synthpipe.flows.runners import prefect_defaults

    prefect_defaults()  # before Prefect is imported: it reads its settings once
    from synthpipe.flows.emit import sample_to_directory

    runner = runner_config(workers=args.workers, dask_address=args.dask_address)
    result = sample_to_directory(args.model_dir, args.rows, Path(args.out), seed=args.seed,
                                 conditions=args.condition, device=args.device, runner=runner)
    print(f"wrote {result['rows']} rows to {Path(args.out) / 'synthetic'}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    """Validate as a run does, in bounded memory: the real table (and holdout) are scanned once
    each (whole-table profile + seeded reservoir sample, flows/io/scan.py), the schema takes its
    bounds, categories and null rates from the profile, classifier checks use the samples, and the
    expectations stream every synthetic row (validators/streaming.py)."""
    import tempfile
    import time

    from synthpipe.flows.io import atomic_directory
    from synthpipe.flows.io.scan import as_parquet, scan_source
    from synthpipe.generators.schema import infer_schema
    from synthpipe.validators import run_validation
    from synthpipe.validators.config import SYNTHETIC_SAMPLE_ROWS
    from synthpipe.validators.report import write_report

    started = time.perf_counter()
    real = scan_source(args.real, holdout_fraction=0.0)
    synthetic = scan_source(args.synthetic, max_train_rows=SYNTHETIC_SAMPLE_ROWS, holdout_fraction=0.0)
    holdout = scan_source(args.holdout, holdout_fraction=0.0).train if args.holdout else None
    ingest_s = time.perf_counter() - started
    schema = infer_schema(real.train, None, real.profile)
    config: dict[str, Any] = {}
    if args.expectations:
        config["expectations_suite"] = args.expectations
    out = Path(args.out)
    with atomic_directory(out) as stage, tempfile.TemporaryDirectory(prefix=".synthpipe-validate-", dir=out.parent) as spool:
        started = time.perf_counter()
        checks = run_validation(
            real.train, synthetic.train, schema, holdout=holdout, target=args.target,
            config={**config, "out_dir": str(stage)}, synthetic_path=as_parquet(args.synthetic, Path(spool)),
        )
        run_info = {
            "source": real.provenance.to_dict(),
            "synthetic_source": synthetic.provenance.to_dict(),
            "rows": {"real": real.profile.rows, "synthetic": synthetic.profile.rows,
                     "holdout": 0 if holdout is None else len(holdout),
                     "samples": {"real": len(real.train), "synthetic": len(synthetic.train)}},
            "timings": {"ingest_s": round(ingest_s, 3), "validate_s": round(time.perf_counter() - started, 3)},
        }
        report = write_report(stage, checks, run_info, None)
    _print_verdict(report, out)
    return EXIT_OK if report["passed"] else EXIT_GATE


def _disk_full(exc: BaseException | None) -> bool:
    """ENOSPC anywhere in the chain (pyarrow, torch and GX wrap it in their own errors)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _print_verdict(report: dict[str, Any], out: Path) -> None:
    verdict = "PASS" if report["passed"] else "FAIL (a quality gate failed)"
    print(f"\nsynthpipe: {verdict}; report: {out / 'report.html'}")
    for check in report.get("checks", []):
        mark = {True: "pass", False: "FAIL", None: "info"}[check.get("passed")]
        score = check.get("score")
        extra = check.get("extra") or {}
        if extra.get("applicable") is False:
            mark, score_text = "n/a", str(extra.get("reason", "not applicable"))
        else:
            score_text = f"{score:.4g}" if isinstance(score, int | float) else str(score)
        print(f"  {mark:4}  {check['name']:<28} {score_text}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())

