"""`dojo bench`: time DataLoader settings with kata 11's loader, and host-to-device copies;
summarize a run as tables and a chart.

Usage
-----
    dojo bench                       run the benchmarks against katas/ (your kata 11), then summarize
    dojo bench --impl=solutions      the same with the reference solutions (or any folder)
    dojo bench --quick               small data sets: well under a minute on a 2-core CPU
    dojo bench --load RUN.json       summarize a saved run; nothing is timed
    dojo bench -- -k png             arguments after `--` go to pytest (here: only the PNG data set)
    python -m dojo.bench ...         the same, without the `dojo` entry point

A run is `python -m pytest tests/benchmarks/test_loader_throughput.py
tests/benchmarks/test_host_to_device.py --benchmark-only --benchmark-json=RUN.json [--impl=...]
[--bench-quick] [--bench-workers=0,2,8]` (the project's addopts skip benchmarks in every other
run, with --benchmark-skip; --benchmark-only overrides it); `--benchmark-disable` runs each case
once, untimed, as a smoke test. A run is saved as
`.dojo/bench/bench-YYYYmmdd-HHMMSS.json` (or `--json PATH`), in pytest-benchmark's format, and
the chart next to it (`--png PATH`). Two saved runs compare with pytest-benchmark's own tool:
`pytest-benchmark compare A.json B.json --group-by=group`.

What is timed
-------------
- Loader throughput (tests/benchmarks/test_loader_throughput.py): one epoch per round through
  the implementation's `make_loader` and `move_batch` (kata 11), over num_workers (0, 1, 2, 4,
  powers of two up to the CPU count; `--bench-workers=0,2,8` to choose) and pin_memory
  (off/on; "on" only where there is an accelerator, since make_loader turns it off elsewhere),
  for two data sets: `tensors` (float32 3x32x32 samples in memory, kata 11's InMemoryDataset,
  a batch per `__getitems__`) and `png` (32x32 PNG images held as bytes, decoded with PIL per
  item, then ToTensor + Normalize: CIFAR from disk, minus the disk). Workers are persistent and
  the first epoch is a warm-up, so the figures are the steady state from epoch two on. Every
  epoch ends with the batches on the device (the GPU where there is one), synchronized.
  The kata must be finished in the folder under test: while it is a stub these are SKIPPED.
- Host-to-device copies (tests/benchmarks/test_host_to_device.py, CUDA only): GB/s from
  pageable and from pinned memory for a few sizes, and their ratio; pinned is also given as
  a fraction of PCIe Gen5 x16 (about 63 GB/s each way).

Every figure is a median over rounds, clocks read after a device synchronize, warm-up rounds
left out; each benchmark's `extra_info` holds the device, CPU count, torch version and the
settings, so a JSON file describes itself. The summary shows per data set a table (rows
num_workers, columns pin_memory; images/s and the speed-up over num_workers=0 without
pinning), the best setting, and the copy table when there is one.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

PCIE_GEN5_X16_GB_PER_S = 63.0
BENCH_FILES = ("tests/benchmarks/test_loader_throughput.py", "tests/benchmarks/test_host_to_device.py")
BASELINE = (0, False)  # (num_workers, pin_memory) every speed-up is measured against


@dataclass(frozen=True)
class LoaderFigure:
    dataset: str
    num_workers: int
    pin_memory: bool
    images_per_s: float
    median_s: float
    rounds: int


@dataclass(frozen=True)
class CopyFigure:
    bytes: int
    memory: str  # "pageable" or "pinned"
    gb_per_s: float


@dataclass
class BenchRun:
    loader: list[LoaderFigure] = field(default_factory=list)
    copies: list[CopyFigure] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # device, device_name, cpu_count, torch, impl, quick
    descriptions: dict[str, str] = field(default_factory=dict)  # data set -> what it is
    when: str = ""

    def datasets(self) -> list[str]:
        return list(dict.fromkeys(f.dataset for f in self.loader))

    def figures(self, dataset: str) -> dict[tuple[int, bool], LoaderFigure]:
        return {(f.num_workers, f.pin_memory): f for f in self.loader if f.dataset == dataset}

    def best(self, dataset: str) -> LoaderFigure | None:
        figures = self.figures(dataset).values()
        return max(figures, key=lambda f: f.images_per_s, default=None)

    def speedup(self, figure: LoaderFigure) -> float | None:
        base = self.figures(figure.dataset).get(BASELINE)
        return figure.images_per_s / base.images_per_s if base else None

    def copy_rows(self) -> list[tuple[int, float | None, float | None]]:
        """(bytes, pageable GB/s, pinned GB/s) per size, smallest first."""
        by_size: dict[int, dict[str, float]] = {}
        for c in self.copies:
            by_size.setdefault(c.bytes, {})[c.memory] = c.gb_per_s
        return [(size, d.get("pageable"), d.get("pinned")) for size, d in sorted(by_size.items())]


def read_run(json_path: str | Path) -> BenchRun:
    """The figures of a pytest-benchmark JSON file written by tests/benchmarks.

    Throughputs are recomputed from each benchmark's median and its extra_info (images per
    epoch, bytes per round); benchmarks that are not ours are ignored."""
    data = json.loads(Path(json_path).read_text())
    run = BenchRun(when=data.get("datetime", ""))
    for bench in data.get("benchmarks", []):
        extra, stats = bench.get("extra_info", {}), bench.get("stats", {})
        median = stats.get("median")
        if not median or extra.get("kind") not in ("loader", "h2d"):
            continue
        if not run.info:
            run.info = {k: extra.get(k) for k in ("device", "device_name", "cpu_count", "torch", "impl", "quick")}
        if extra["kind"] == "loader":
            run.loader.append(
                LoaderFigure(
                    dataset=extra["dataset"],
                    num_workers=int(extra["num_workers"]),
                    pin_memory=bool(extra["pin_memory"]),
                    images_per_s=extra["images"] / median,
                    median_s=median,
                    rounds=int(stats.get("rounds", 0)),
                )
            )
            if extra.get("dataset_description"):
                run.descriptions[extra["dataset"]] = extra["dataset_description"]
        else:
            moved = extra.get("bytes_per_round", extra["bytes"])
            run.copies.append(CopyFigure(int(extra["bytes"]), extra["memory"], moved / median / 1e9))
    return run


# ---------------------------------------------------------------- text


def size_label(n_bytes: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n_bytes >= 1 << shift:
            return f"{n_bytes / (1 << shift):g} {unit}"
    return f"{n_bytes} B"


def setting_label(figure: LoaderFigure) -> str:
    return f"num_workers={figure.num_workers}, pin_memory={figure.pin_memory}"


def _header(run: BenchRun) -> str:
    info = run.info
    where = f"{info.get('device')} ({info.get('device_name')})" if info.get("device_name") else str(info.get("device"))
    mode = ", quick mode (small data sets: figures are rough)" if info.get("quick") else ""
    return (
        f"kata 11 from {info.get('impl')}, batches delivered to {where}; {info.get('cpu_count')} CPUs; "
        f"torch {info.get('torch')}{mode}" + (f"; run {run.when[:19]}" if run.when else "")
    )


def loader_table(run: BenchRun, dataset: str) -> Table:
    """Rows num_workers, columns pin_memory; each cell images/s and the speed-up over the baseline
    (num_workers=0, pin_memory=False); the best cell in bold."""
    figures = run.figures(dataset)
    pins = sorted({pin for _, pin in figures})
    best = run.best(dataset)
    cpus = run.info.get("cpu_count")
    table = Table()
    table.add_column("num_workers", justify="right")
    for pin in pins:
        table.add_column(f"pin_memory={pin}", justify="right")
    for workers in sorted({w for w, _ in figures}):
        cells = []
        for pin in pins:
            figure = figures.get((workers, pin))
            if figure is None:
                cells.append("—")
                continue
            speedup = run.speedup(figure)
            text = f"{figure.images_per_s:,.0f}/s  " + (f"{speedup:.2f}×" if speedup is not None else "(no baseline)")
            cells.append(f"[bold green]{text}[/]" if figure == best else text)
        label = str(workers) + (" (> CPUs)" if cpus and workers > cpus else "")
        table.add_row(label, *cells)
    return table


def copy_table(run: BenchRun) -> Table:
    table = Table()
    for column in ("size", "pageable GB/s", "pinned GB/s", "pinned / pageable", "pinned / PCIe Gen5 x16"):
        table.add_column(column, justify="right")
    for size, pageable, pinned in run.copy_rows():
        ratio = f"{pinned / pageable:.2f}×" if pageable and pinned else "—"
        fraction = f"{pinned / PCIE_GEN5_X16_GB_PER_S:.0%}" if pinned else "—"
        table.add_row(
            size_label(size),
            f"{pageable:.1f}" if pageable else "—",
            f"{pinned:.1f}" if pinned else "—",
            ratio,
            fraction,
        )
    return table


def renderables(run: BenchRun) -> list:
    """What the summary prints, in order."""
    out: list = []
    if not run.loader and not run.copies:
        return [
            "[yellow]No benchmark figures in this file[/] (were they all skipped? kata 11 must be finished, "
            "or use --impl=solutions; copies are timed on CUDA only)."
        ]
    out += [escape(_header(run)), ""]
    if run.loader:
        out.append(
            "Loader: images/s of one epoch to the device (median), and the speed-up over num_workers=0, pin_memory=False."
        )
    for dataset in run.datasets():
        about = run.descriptions.get(dataset)
        out += ["", f"[bold]{escape(dataset)}[/]" + (f": {escape(about)}" if about else ""), loader_table(run, dataset)]
        best = run.best(dataset)
        speedup = run.speedup(best)
        gain = f", {speedup:.2f}× the baseline" if speedup is not None else ""
        out.append(f"best for {dataset}: [bold]{setting_label(best)}[/] ({best.images_per_s:,.0f} images/s{gain})")
    if not run.loader:
        out += ["", "[yellow]No loader figures: finish kata 11 (or use --impl=solutions) to time the loader.[/]"]
    pins = {f.pin_memory for f in run.loader}
    if run.loader and pins == {False}:
        out.append(
            "[dim]pin_memory=True was not timed: it needs an accelerator (make_loader turns it off without one).[/]"
        )
    if run.copies:
        out += [
            "",
            f"[bold]Host to device copies[/]: GB/s (1e9 bytes/s, median); PCIe Gen5 x16 ≈ {PCIE_GEN5_X16_GB_PER_S:g} GB/s",
            copy_table(run),
        ]
    else:
        out += ["", "[dim]Host-to-device copies: not timed (CUDA only).[/]"]
    return out


# ---------------------------------------------------------------- chart


def write_chart(run: BenchRun, png_path: str | Path) -> Path:
    """A PNG: images/s per num_workers (a bar per pin_memory) for each data set, and GB/s per
    copy size when copies were timed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = run.datasets()
    panels = len(datasets) + (1 if run.copies else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(5.5 * max(panels, 1), 4.2), squeeze=False)
    axes = axes[0]
    for ax, dataset in zip(axes, datasets):
        figures = run.figures(dataset)
        workers = sorted({w for w, _ in figures})
        pins = sorted({p for _, p in figures})
        width = 0.8 / len(pins)
        for i, pin in enumerate(pins):
            xs = [j + (i - (len(pins) - 1) / 2) * width for j in range(len(workers))]
            ys = [figures[(w, pin)].images_per_s if (w, pin) in figures else 0 for w in workers]
            ax.bar(xs, ys, width, label=f"pin_memory={pin}")
        ax.set_xticks(range(len(workers)), [str(w) for w in workers])
        ax.set_xlabel("num_workers")
        ax.set_ylabel("images/s (median epoch)")
        ax.set_title(dataset)
        ax.legend()
    if run.copies:
        ax = axes[len(datasets)]
        rows = run.copy_rows()
        width = 0.4
        for i, (name, column) in enumerate((("pageable", 1), ("pinned", 2))):
            xs = [j + (i - 0.5) * width for j in range(len(rows))]
            ax.bar(xs, [row[column] or 0 for row in rows], width, label=name)
        ax.axhline(
            PCIE_GEN5_X16_GB_PER_S,
            linestyle="--",
            color="grey",
            label=f"PCIe Gen5 x16 ≈ {PCIE_GEN5_X16_GB_PER_S:g} GB/s",
        )
        ax.set_xticks(range(len(rows)), [size_label(row[0]) for row in rows])
        ax.set_xlabel("copy size")
        ax.set_ylabel("GB/s")
        ax.set_title("host to device")
        ax.legend()
    if panels == 0:
        axes[0].text(0.5, 0.5, "no benchmark figures", ha="center", va="center")
        axes[0].set_axis_off()
    info = run.info
    fig.suptitle(
        f"kata 11 from {info.get('impl')}, batches to {info.get('device')} ({info.get('device_name')}), "
        f"{info.get('cpu_count')} CPUs, torch {info.get('torch')}" + (", quick mode" if info.get("quick") else ""),
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- entry points


def summarize(json_path: str | Path, png_path: str | Path | None = None, console: Console | None = None) -> str:
    """Read a saved run, print its tables to `console` (if given), write the chart to
    `png_path` (if given), and return the summary as plain text."""
    run = read_run(json_path)
    text = Console(file=io.StringIO(), record=True, width=120, color_system=None)
    for target in (text, console):
        if target is not None:
            for item in renderables(run):
                target.print(item)
    if png_path is not None:
        path = write_chart(run, png_path)
        line = f"chart: {path}"
        text.print(line)
        if console is not None:
            console.print(escape(line))
    return text.export_text()


def bench_command(
    json_path: str | Path, impl: str | None = None, quick: bool = False, pytest_args: list[str] = ()
) -> list[str]:
    """The pytest command line of a benchmark run that saves its JSON at `json_path`."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *BENCH_FILES,
        # --benchmark-only overrides the --benchmark-skip of the project's addopts (a marker
        # selection would not: skipped benchmarks stay skipped).
        "--benchmark-only",
        f"--benchmark-json={json_path}",
        "-rs",
    ]
    if impl:
        cmd.append(f"--impl={impl}")
    if quick:
        cmd.append("--bench-quick")
    return cmd + list(pytest_args)


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--impl",
        default=argparse.SUPPRESS,  # keeps a `dojo --impl X bench` given before the subcommand
        help="whose kata 11 to time: katas (default; env KATA_IMPL), solutions, or a folder",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small data sets: well under a minute on a 2-core CPU (figures are rougher)",
    )
    p.add_argument("--load", metavar="JSON", help="summarize this saved run instead of running the benchmarks")
    p.add_argument("--json", metavar="PATH", help="where to save the run (default .dojo/bench/bench-<time>.json)")
    p.add_argument("--png", metavar="PATH", help="where to write the chart (default: the JSON's path with .png)")
    p.add_argument(
        "pytest_args", nargs="*", metavar="-- PYTEST_ARGS", help="after --: more pytest arguments, e.g. -- -k png"
    )


def run(args: argparse.Namespace, root: Path | None = None, console: Console | None = None) -> int:
    """`dojo bench`: run the benchmarks (or read --load), then print the summary and write the chart."""
    console = console or Console(highlight=False)
    if args.load:
        json_path = Path(args.load)
        if not json_path.is_file():
            console.print(f"[red]dojo bench: no such file: {escape(str(json_path))}[/]")
            return 2
        summarize(json_path, Path(args.png) if args.png else json_path.with_suffix(".png"), console)
        return 0
    if root is None:
        from dojo.project import find_root

        root = find_root()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = Path(args.json) if args.json else root / ".dojo" / "bench" / f"bench-{stamp}.json"
    json_path = json_path if json_path.is_absolute() else Path.cwd() / json_path
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)  # a stale file must not pass for this run's figures
    cmd = bench_command(json_path, getattr(args, "impl", None), args.quick, args.pytest_args)
    console.print(f"[dim]$ {escape(' '.join(cmd))}[/]")
    returncode = subprocess.run(cmd, cwd=root).returncode
    if not json_path.is_file():
        console.print(
            "[yellow]dojo bench: no figures were saved[/] (no benchmark ran: see the skip reasons above; "
            "kata 11 must be finished, or use --impl=solutions)"
        )
        return returncode or 1
    console.print()
    summarize(json_path, Path(args.png) if args.png else json_path.with_suffix(".png"), console)
    console.print(f"run saved: {escape(str(json_path))}")
    return returncode


def add_arguments(sub) -> None:
    p = sub.add_parser(
        "bench", help="time DataLoader settings (num_workers x pin_memory) with your kata 11; table + chart"
    )
    add_bench_arguments(p)


def cmd_bench(root: Path, args: argparse.Namespace) -> int:
    return run(args, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dojo.bench", description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
