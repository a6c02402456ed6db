"""Host-to-device copy bandwidth from pageable vs pinned (page-locked) memory, CUDA only.

A copy from pageable memory goes through a staging buffer the driver pins on the fly; from
pinned memory the GPU's copy engine reads it directly (and asynchronously: `non_blocking=True`).
Each round copies the same host buffer to a preallocated device tensor enough times to move
`h2d_bytes_per_round` (so small copies are not all launch overhead), then synchronizes; rounds
start after a synchronize too, and the first rounds are warm-up. GB/s (1e9 bytes/s) from the
median round is in `extra_info`, and for pinned memory its ratio to the pageable figure of the
same size. For scale: PCIe Gen5 x16 carries about 63 GB/s each way, Gen4 x16 about 32.
"""

from __future__ import annotations

import pytest
import torch

PCIE_GEN5_X16_GB_PER_S = 63.0
WARMUP_ROUNDS = 2


@pytest.fixture(scope="session")
def pageable_gb_per_s() -> dict[int, float]:
    """Pageable figures by size, for the pinned cases' ratio (pageable runs first)."""
    return {}


@pytest.mark.benchmark
@pytest.mark.parametrize("memory", ["pageable", "pinned"])
def test_host_to_device_copy(benchmark, h2d_bytes, memory, bench_device, sync, sizes, machine_info, pageable_gb_per_s):
    if bench_device.type != "cuda":
        pytest.skip(
            f"host-to-device copies are timed on CUDA only, and this machine has no CUDA GPU (device: {bench_device})"
        )
    pinned = memory == "pinned"
    source = torch.empty(h2d_bytes, dtype=torch.uint8, pin_memory=pinned).fill_(7)  # touch every page
    target = torch.empty(h2d_bytes, dtype=torch.uint8, device=bench_device)
    copies = max(1, sizes.h2d_bytes_per_round // h2d_bytes)

    def copy_round() -> None:
        for _ in range(copies):
            # non_blocking only from pinned memory: from pageable memory the copy is synchronous anyway.
            target.copy_(source, non_blocking=pinned)
        sync()

    benchmark.group = f"host to device: {h2d_bytes / 2**20:g} MiB"
    benchmark.extra_info.update(
        machine_info,
        kind="h2d",
        memory=memory,
        bytes=h2d_bytes,
        copies_per_round=copies,
        bytes_per_round=copies * h2d_bytes,
        non_blocking=pinned,
        pcie_gen5_x16_gb_per_s=PCIE_GEN5_X16_GB_PER_S,
    )
    benchmark.pedantic(copy_round, setup=sync, rounds=sizes.h2d_rounds, warmup_rounds=WARMUP_ROUNDS)
    assert torch.equal(target[:16].cpu(), source[:16]), "the copied bytes differ from the source"
    if benchmark.stats is None:  # --benchmark-disable
        return
    gb_per_s = copies * h2d_bytes / benchmark.stats.stats.median / 1e9
    benchmark.extra_info.update(gb_per_s=gb_per_s, fraction_of_pcie_gen5_x16=gb_per_s / PCIE_GEN5_X16_GB_PER_S)
    if pinned and h2d_bytes in pageable_gb_per_s:
        benchmark.extra_info["pinned_over_pageable"] = gb_per_s / pageable_gb_per_s[h2d_bytes]
    elif not pinned:
        pageable_gb_per_s[h2d_bytes] = gb_per_s
