"""How fast kata 11's loader feeds the device: one epoch per round, over num_workers x pin_memory,
for two data sets (in-memory tensors, and PNG images decoded per item like CIFAR from disk).

Each round is one full epoch: every batch fetched through the implementation's `make_loader`
and moved with its `move_batch` (non_blocking where the batch is pinned), the device
synchronized before the clock starts and before it stops. Worker processes are persistent and
the first epoch is a warm-up (`warmup_rounds`), so start-up is out of the figures: they are the
steady state a training loop sees from its second epoch on. The median epoch time becomes
images/s in `extra_info`, with everything needed to read it (device, CPUs, torch, settings).

Run with `pytest tests/benchmarks --benchmark-only --impl=solutions`; `dojo bench` does that and
summarizes. Skipped until kata 11 is done in the folder under test.
"""

from __future__ import annotations

import multiprocessing

import pytest

DATASETS = ["tensors", "png"]
PREFETCH_FACTOR = 2


def _start_method() -> str | None:
    """'fork' where the platform has it, else None.

    The kata is loaded from a file path under a made-up module name, which a spawned (or
    forkserver) worker cannot import to unpickle `InMemoryDataset` or `keep_batch`; a forked
    worker inherits them, and the in-memory tensors without a copy to shared memory."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def _shutdown_workers(loader) -> None:
    """Stop persistent workers now rather than whenever the loader is collected."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()


@pytest.mark.benchmark
# More workers than CPUs is part of the grid on purpose (the table marks those rows).
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("pin_memory", [False, True], ids=["unpinned", "pinned"])
@pytest.mark.parametrize("dataset", DATASETS)
def test_epoch_to_device(
    benchmark, dataset, num_workers, pin_memory, bench_data, loader_kata, bench_device, sync, sizes, machine_info
):
    if pin_memory and bench_device.type == "cpu":
        pytest.skip(
            "pin_memory=True needs an accelerator: without one make_loader leaves it off, "
            "so the loader is the pin_memory=False one"
        )
    context = _start_method()
    if num_workers and context is None:
        pytest.skip(
            "worker processes need the 'fork' start method (spawned workers cannot import a kata loaded from a path)"
        )
    loader = loader_kata.make_loader(
        bench_data.dataset,
        sizes.batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=True,  # make_loader keeps it only with workers
        prefetch_factor=PREFETCH_FACTOR,
        seed=0,
        collate_fn=bench_data.collate_fn,
    )
    if num_workers:
        loader.multiprocessing_context = context
    move_batch = loader_kata.move_batch
    device = bench_device

    def epoch() -> int:
        seen = 0
        for batch in loader:
            moved = move_batch(batch, device)
            seen += moved[0].shape[0]
        sync()  # the last non_blocking copies must have landed before the clock stops
        return seen

    benchmark.group = f"loader: {dataset} on {device.type}"
    benchmark.extra_info.update(
        machine_info,
        kind="loader",
        dataset=dataset,
        dataset_description=bench_data.description,
        images=len(bench_data.dataset),
        batch_size=sizes.batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        pinned=bool(getattr(loader, "pin_memory", False)),  # what the loader does (make_loader may turn it off)
        persistent_workers=num_workers > 0,
        prefetch_factor=PREFETCH_FACTOR if num_workers else None,
        start_method=context if num_workers else None,
        copy="move_batch, non_blocking when pinned" if device.type != "cpu" else "none (the device is the CPU)",
    )
    try:
        # setup=sync: work queued before a round is not counted in it.
        seen = benchmark.pedantic(epoch, setup=sync, rounds=sizes.rounds, warmup_rounds=sizes.warmup_rounds)
    finally:
        _shutdown_workers(loader)
    assert seen == len(bench_data.dataset), (
        f"one epoch of make_loader(...) delivered {seen} samples; the data set holds {len(bench_data.dataset)}"
    )
    if benchmark.stats is not None:  # None with --benchmark-disable
        median = benchmark.stats.stats.median
        benchmark.extra_info.update(epoch_s_median=median, images_per_s=seen / median)
