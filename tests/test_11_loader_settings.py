"""Tests for kata 11, DataLoader settings that matter: one class per exercise, in learning order.

Most of what this kata is about shows only on a GPU machine, or only in time. On the CPU the
tests pretend: `monkeypatch` makes an accelerator present or absent (`torch.accelerator` and
`torch.cuda.is_available`), makes tensors look pinned, and replaces the clock by a fake one
that moves only when the test says so (host work) and a fake GPU queue that
`torch.cuda.synchronize()` drains, so throughput figures are exact numbers. Tests parametrized
with GPU_ONLY do the same with real pinned memory and real copies where CUDA is present.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dojo.testing import GPU_ONLY, check, check_tensor, describe, exercise, expect_raises, spy_on_to

META = torch.device("meta")


def _structure(obj) -> str:
    """A short description of a batch's structure: 'list of 4: (tuple of 2: (tensor(2, 3), tensor()), ...)'."""
    if isinstance(obj, torch.Tensor):
        return f"tensor{tuple(obj.shape)}".replace(",)", ")")
    if isinstance(obj, (tuple, list)):
        inner = ", ".join(_structure(item) for item in obj[:2]) + (", ..." if len(obj) > 2 else "")
        return f"{type(obj).__name__} of {len(obj)}: ({inner})"
    if isinstance(obj, DataLoader):
        return "a DataLoader"
    return describe(obj)


def _as_is(batch):
    """collate_fn that passes the dataset's batch through (the tests' own keep_batch)."""
    return batch


def _order(loader) -> list[int]:
    """The sample indices in the order one epoch of `loader` over TensorDataset(arange(n)) visits them."""
    return [int(i) for batch in loader for i in batch[0]]


def _index_dataset(n: int = 20) -> TensorDataset:
    return TensorDataset(torch.arange(n))


def _pretend_accelerator(monkeypatch, present: bool) -> None:
    """Make torch.accelerator.is_available() and torch.cuda.is_available() both say `present`."""
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: present)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: present)


def _call(what: str, fn, *args, **kwargs):
    """fn(*args, **kwargs); a ValueError from DataLoader becomes a failure that says which setting."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        message = f"{what} raised ValueError: {err}"
    check(
        False,
        f"{message}\nDataLoader refuses worker-only settings (persistent_workers, prefetch_factor) when "
        "num_workers=0: pass them only when num_workers > 0",
    )


@exercise("make_loader")
class TestMakeLoader:
    def test_worker_settings_are_left_out_without_workers(self, kata):
        call = "make_loader(dataset, 4, num_workers=0, persistent_workers=True, prefetch_factor=4)"
        loader = _call(
            call, kata.make_loader, _index_dataset(), 4, num_workers=0, persistent_workers=True, prefetch_factor=4
        )
        check(
            isinstance(loader, DataLoader) and loader.num_workers == 0,
            f"{call} returned {_structure(loader)} with num_workers={getattr(loader, 'num_workers', None)}; expected a "
            "DataLoader with num_workers=0",
        )

    @pytest.mark.parametrize("num_workers", [1, 2])
    def test_worker_settings_reach_the_loader_with_workers(self, kata, num_workers):
        # Only built, never iterated: no worker process is started.
        call = f"make_loader(dataset, 4, num_workers={num_workers}, persistent_workers=True, prefetch_factor=4)"
        loader = _call(
            call,
            kata.make_loader,
            _index_dataset(),
            4,
            num_workers=num_workers,
            persistent_workers=True,
            prefetch_factor=4,
        )
        check(isinstance(loader, DataLoader), f"{call} returned {_structure(loader)}; expected a DataLoader")
        got = (loader.num_workers, loader.persistent_workers, loader.prefetch_factor)
        check(
            got == (num_workers, True, 4),
            f"{call} gave a loader with num_workers={got[0]}, persistent_workers={got[1]}, prefetch_factor={got[2]}; "
            f"expected {num_workers}, True, 4: with workers, every setting must reach the DataLoader",
        )

    def test_batch_size_and_collate_fn_are_passed_on(self, kata):
        seen = []

        def collate(samples):
            seen.append(len(samples))
            return ("collated", len(samples))

        loader = kata.make_loader(_index_dataset(10), 4, collate_fn=collate)
        got = list(loader)
        check(
            seen == [4, 4, 2] and got == [("collated", 4), ("collated", 4), ("collated", 2)],
            f"make_loader(dataset of 10, 4, collate_fn=collate) called collate with batches of {seen} samples and "
            f"gave {describe(got)}; expected batches of [4, 4, 2] samples, each the result of collate",
        )

    @pytest.mark.parametrize(
        "present, requested, expected",
        [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
        ids=["accelerator_pin", "accelerator_no_pin", "no_accelerator_pin", "no_accelerator_no_pin"],
    )
    def test_pins_memory_only_when_asked_and_an_accelerator_is_present(
        self, kata, monkeypatch, present, requested, expected
    ):
        _pretend_accelerator(monkeypatch, present)
        loader = kata.make_loader(_index_dataset(), 4, pin_memory=requested)  # built, not iterated
        check(
            isinstance(loader, DataLoader) and bool(loader.pin_memory) == expected,
            f"make_loader(dataset, 4, pin_memory={requested}) with {'an' if present else 'no'} accelerator gave "
            f"{_structure(loader)} with pin_memory={getattr(loader, 'pin_memory', None)}; expected pin_memory={expected} "
            "(pin when asked, and only where torch.accelerator.is_available())",
        )

    def test_no_pin_memory_warning_without_an_accelerator(self, kata, monkeypatch):
        # DataLoader warns at each epoch: "'pin_memory' argument is set as true but no accelerator is found, ..."
        _pretend_accelerator(monkeypatch, False)
        loader = kata.make_loader(_index_dataset(), 4, pin_memory=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            list(loader)
        about_pinning = [str(w.message) for w in caught if "pin_memory" in str(w.message)]
        check(
            not about_pinning,
            f"an epoch of make_loader(dataset, 4, pin_memory=True) on a machine without an accelerator warned: "
            f"{about_pinning[0] if about_pinning else ''!r}; expected no warning: pass pin_memory=False where "
            "torch.accelerator.is_available() is False",
        )

    def test_visits_every_sample_once_in_a_shuffled_order(self, kata):
        order = _order(kata.make_loader(_index_dataset(20), 4, seed=0))
        check(
            sorted(order) == list(range(20)) and order != list(range(20)),
            f"one epoch of make_loader(dataset of 20, 4, seed=0) visited {order}; expected each of 0..19 once, "
            "shuffled (shuffle=True)",
        )

    def test_the_same_seed_gives_the_same_order(self, kata):
        torch.manual_seed(0)
        first = kata.make_loader(_index_dataset(20), 4, seed=3)
        second = kata.make_loader(_index_dataset(20), 4, seed=3)
        a = _order(first)
        torch.rand(5)  # someone else uses the global random number generator in between
        b = _order(second)
        check(
            a == b,
            f"two loaders from make_loader(dataset, 4, seed=3) visited {a} and {b}; expected the same order: give "
            "each loader its own torch.Generator seeded with seed (torch.manual_seed changes the global generator, "
            "which everything else draws from too)",
        )

    def test_the_order_depends_on_the_seed(self, kata):
        orders = {seed: _order(kata.make_loader(_index_dataset(20), 4, seed=seed)) for seed in (0, 1)}
        check(
            orders[0] != orders[1],
            f"make_loader(dataset, 4, seed=0) and seed=1 both visited {orders[0]}; expected different orders: seed "
            "the generator with seed (torch.Generator().manual_seed(seed))",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_batches_are_pinned_on_a_gpu_machine(self, kata, device):
        loader = kata.make_loader(TensorDataset(torch.randn(8, 3), torch.arange(8)), 4, pin_memory=True)
        x, y = next(iter(loader))
        check(
            x.is_pinned() and y.is_pinned(),
            f"a batch of make_loader(dataset, 4, pin_memory=True) on a CUDA machine has is_pinned()={x.is_pinned()}, "
            f"{y.is_pinned()}; expected pinned tensors (pin_memory=True reaches the DataLoader where there is a GPU)",
        )


def _tensors(device="cpu", n: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, 3, generator=g)
    y = torch.randint(0, 5, (n,), generator=g)
    w = torch.rand(n, generator=g) > 0.5
    return x.to(device), y.to(device), w.to(device)


def _spy_dataset(kata, *tensors):
    """An InMemoryDataset subclass instance that records its __getitem__ and __getitems__ calls."""
    calls = {"getitem": [], "getitems": []}
    base = kata.InMemoryDataset

    def getitem(self, index):
        calls["getitem"].append(index)
        return base.__getitem__(self, index)

    def getitems(self, indices):
        calls["getitems"].append(list(indices))
        return base.__getitems__(self, indices)

    body = {"__getitem__": getitem}
    if hasattr(base, "__getitems__"):  # without it the DataLoader calls __getitem__ once per sample
        body["__getitems__"] = getitems
    return type("SpiedInMemoryDataset", (base,), body)(*tensors), calls


class _Counted(torch.Tensor):
    """A tensor that counts the torch operations run on it while `_Counted.on` is set."""

    on = False
    calls = 0

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if _Counted.on:
            _Counted.calls += 1
        return super().__torch_function__(func, types, args, kwargs or {})


@exercise("InMemoryDataset")
class TestInMemoryDataset:
    def test_its_length_is_the_number_of_rows(self, kata):
        ds = kata.InMemoryDataset(*_tensors(n=10))
        check(len(ds) == 10, f"len(InMemoryDataset(x, y, w) of 10 rows) is {len(ds)}; expected 10")

    def test_a_sample_is_a_tuple_of_one_row_of_each_tensor(self, kata):
        x, y, w = _tensors()
        got = kata.InMemoryDataset(x, y, w)[3]
        check(
            isinstance(got, tuple) and len(got) == 3,
            f"InMemoryDataset(x, y, w)[3] returned {_structure(got)}; expected a tuple (x[3], y[3], w[3])",
        )
        for name, t, part in zip("xyw", (x, y, w), got):
            check_tensor(part, t[3], f"InMemoryDataset(x, y, w)[3]: the {name} part")

    def test_getitems_returns_the_rows_of_the_indices_in_their_order(self, kata):
        x, y, w = _tensors()
        ds = kata.InMemoryDataset(x, y, w)
        check(
            hasattr(ds, "__getitems__"), "InMemoryDataset has no __getitems__ method; expected one (see the docstring)"
        )
        got = ds.__getitems__([7, 0, 3, 3])
        check(
            isinstance(got, (tuple, list)) and len(got) == 3,
            f"InMemoryDataset(x, y, w).__getitems__([7, 0, 3, 3]) returned {_structure(got)}; expected the batch "
            "(x[[7, 0, 3, 3]], y[[7, 0, 3, 3]], w[[7, 0, 3, 3]]): one tensor per stored tensor, not one tuple per sample",
        )
        for name, t, part in zip("xyw", (x, y, w), got):
            check_tensor(part, t[[7, 0, 3, 3]], f"InMemoryDataset(x, y, w).__getitems__([7, 0, 3, 3]): the {name} part")

    def test_the_loader_calls_getitems_once_per_batch(self, kata):
        ds, calls = _spy_dataset(kata, *_tensors(n=10)[:2])
        list(DataLoader(ds, batch_size=4, collate_fn=_as_is))
        check(
            calls["getitems"] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]],
            f"one epoch of DataLoader(InMemoryDataset(x, y) of 10 rows, batch_size=4) called __getitems__ with "
            f"{calls['getitems']}; expected once per batch: [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]",
        )

    def test_getitem_is_not_called_per_sample(self, kata):
        ds, calls = _spy_dataset(kata, *_tensors(n=10)[:2])
        list(DataLoader(ds, batch_size=4, collate_fn=_as_is))
        check(
            not calls["getitem"],
            f"one epoch of DataLoader(InMemoryDataset(x, y), batch_size=4) called __getitem__ {len(calls['getitem'])} "
            f"times (indices {calls['getitem']}); expected never: __getitems__ fetches the whole batch itself",
        )

    def test_a_batch_costs_one_indexing_per_tensor_not_one_per_sample(self, kata):
        # The stored tensors count the operations run on them: a loop over the indices runs one per sample.
        x, y, _ = _tensors(n=32)
        ds = kata.InMemoryDataset(x.as_subclass(_Counted), y.as_subclass(_Counted))
        loader = DataLoader(ds, batch_size=8, collate_fn=_as_is)
        _Counted.calls, _Counted.on = 0, True
        try:
            list(loader)
        finally:
            _Counted.on = False
        check(
            _Counted.calls <= 3 * 2 * 4,
            f"one epoch of DataLoader(InMemoryDataset(x, y) of 32 rows, batch_size=8) ran {_Counted.calls} tensor "
            "operations on x and y; expected about 8 (one indexing per tensor per batch, 4 batches): index each "
            "tensor with the whole list of indices, t[indices], instead of looping over them",
        )

    def test_batches_equal_those_of_a_tensor_dataset(self, kata, device):
        x, y, _ = _tensors(device, n=10)
        reference = DataLoader(
            TensorDataset(x, y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1)
        )
        loader = DataLoader(
            kata.InMemoryDataset(x, y),
            batch_size=4,
            shuffle=True,
            generator=torch.Generator().manual_seed(1),
            collate_fn=_as_is,
        )
        got, expected = list(loader), list(reference)
        what = f"DataLoader(InMemoryDataset(x, y) on {device.type}, batch_size=4, shuffle=True, collate_fn=keep_batch)"
        check(len(got) == len(expected), f"{what} gave {len(got)} batches; expected {len(expected)}")
        for i, (batch, want) in enumerate(zip(got, expected)):
            check(
                isinstance(batch, (tuple, list)) and len(batch) == 2,
                f"{what}: batch {i} is {_structure(batch)}; expected (x_batch, y_batch), two batched tensors: "
                "__getitems__ returns the finished batch, not one tuple per sample",
            )
            check_tensor(batch[0], want[0], f"{what}: batch {i}, x")
            check_tensor(batch[1], want[1], f"{what}: batch {i}, y")


def _check_flags(calls: dict[int, list[bool]], batch, pinned: set[int], what: str) -> None:
    """Tensor i of `batch` was moved with non_blocking=True exactly when i is in `pinned`."""
    __tracebackhide__ = True
    for i, t in enumerate(batch):
        flags = calls.get(id(t))
        check(flags, f"{what} did not call Tensor.to on batch[{i}]; expected each tensor moved with Tensor.to")
        want = i in pinned
        check(
            all(flag == want for flag in flags),
            f"{what} moved batch[{i}] ({'pinned' if want else 'not pinned'}) with non_blocking={flags[-1]}; expected "
            f"non_blocking={want}: an asynchronous copy needs pinned memory; ask each tensor (t.is_pinned())",
        )


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 3, generator=g), torch.tensor([3, 1, 4, 1]), torch.rand(4, 2, generator=g).double()


@exercise("move_batch")
class TestMoveBatch:
    def test_every_tensor_arrives_on_the_device(self, kata, device):
        if device.type == "mps":
            pytest.skip("MPS has no float64")
        batch = _batch()
        got = kata.move_batch(batch, device)
        check(
            isinstance(got, tuple) and len(got) == 3,
            f"move_batch((x, y, z), {device.type}) returned {_structure(got)}; expected a tuple of 3 tensors",
        )
        for i, (part, source) in enumerate(zip(got, batch)):
            check_tensor(part, source.to(device), f"move_batch((x, y, z), {device.type})[{i}]")

    @pytest.mark.parametrize("kind", [tuple, list], ids=["tuple", "list"])
    def test_the_container_keeps_its_type(self, kata, kind):
        got = kata.move_batch(kind(_batch()), META)
        check(
            type(got) is kind and len(got) == 3 and all(isinstance(t, torch.Tensor) and t.device == META for t in got),
            f"move_batch({kind.__name__} of 3 tensors, 'meta') returned {_structure(got)}; expected a {kind.__name__} of "
            "3 tensors on 'meta' (a DataLoader gives lists, InMemoryDataset tuples)",
        )

    def test_ordinary_memory_is_moved_without_non_blocking(self, kata, monkeypatch):
        batch = _batch()
        calls = spy_on_to(monkeypatch)
        kata.move_batch(batch, META)
        _check_flags(calls, batch, set(), "move_batch((x, y, z) in ordinary memory, 'meta')")

    def test_pinned_memory_is_moved_with_non_blocking(self, kata, monkeypatch):
        # Pinning needs an accelerator; here is_pinned() pretends that batch[1] is pinned (the cuda test is real).
        batch = _batch()
        original = torch.Tensor.is_pinned
        monkeypatch.setattr(
            torch.Tensor, "is_pinned", lambda self, *a, **k: self is batch[1] or original(self, *a, **k)
        )
        calls = spy_on_to(monkeypatch)
        kata.move_batch(batch, META)
        _check_flags(calls, batch, {1}, "move_batch((x, y pinned, z), 'meta')")

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_a_pinning_loaders_batches_are_copied_asynchronously_and_arrive(self, kata, monkeypatch, device):
        x, y = torch.randn(8, 3), torch.arange(8)
        batch = next(iter(DataLoader(TensorDataset(x, y), batch_size=8, pin_memory=True)))
        check(batch[0].is_pinned(), "DataLoader(..., pin_memory=True) did not pin on this CUDA machine (test setup)")
        calls = spy_on_to(monkeypatch)
        got = kata.move_batch(batch, device)
        torch.cuda.synchronize()  # asynchronous copies must be finished before the values are read
        _check_flags(calls, batch, {0, 1}, "move_batch(pinned batch of a pin_memory=True loader, cuda)")
        check(type(got) is list, f"move_batch(list batch, cuda) returned {_structure(got)}; expected a list")
        check_tensor(got[0], x.to(device), "move_batch(pinned batch, cuda)[0]")
        check_tensor(got[1], y.to(device), "move_batch(pinned batch, cuda)[1]")


class _FakeTime:
    """A fake clock and a fake CUDA stream, so that a throughput has one exact right answer.

    The clock moves only when host work is done (`spend`), and `synchronize` (standing in for
    torch.cuda.synchronize) moves it on to the moment the fake GPU's queue is empty. A copy to
    "cuda" only queues `copy_seconds` of GPU work and returns at once, as an asynchronous copy does.
    """

    def __init__(self, copy_seconds: float = 0.0) -> None:
        self.now = 1000.0
        self.busy_until = self.now
        self.copy_seconds = copy_seconds
        self.syncs = 0
        self.moved: list[int] = []  # id() of every tensor moved (Tensor.to) while installed

    def clock(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds

    def queue(self, seconds: float) -> None:
        self.busy_until = max(self.now, self.busy_until) + seconds

    def synchronize(self, *args, **kwargs) -> None:
        self.syncs += 1
        self.now = max(self.now, self.busy_until)

    def clock_ns(self) -> int:
        return round(self.now * 1e9)

    def install(self, m, kata=None) -> None:
        """Patch the clocks and CUDA on the monkeypatch context `m` (for the call under test only).

        Any clock of the time module will do, also one the kata imported by name
        (`from time import perf_counter`), and any way of waiting for the GPU."""
        clocks = {name: self.clock for name in ("perf_counter", "monotonic", "time", "process_time")}
        clocks.update({f"{name}_ns": self.clock_ns for name in ("perf_counter", "monotonic", "time")})
        originals = {getattr(time, name): name for name in clocks}
        for name, fake_clock in clocks.items():
            m.setattr(time, name, fake_clock)
        for attr, value in list(vars(kata).items()) if kata is not None else []:
            if callable(value) and value in originals:
                m.setattr(kata, attr, clocks[originals[value]])
        m.setattr(torch.cuda, "synchronize", self.synchronize)  # counts calls; on the CPU it should see none
        if hasattr(torch, "accelerator") and hasattr(torch.accelerator, "synchronize"):
            m.setattr(torch.accelerator, "synchronize", self.synchronize)
        fake = self

        class _Stream:
            def synchronize(self) -> None:
                fake.synchronize()

        m.setattr(torch.cuda, "current_stream", lambda *a, **k: _Stream())
        original = torch.Tensor.to

        def to(tensor, *args, **kwargs):
            fake.moved.append(id(tensor))
            target = kwargs.get("device", args[0] if args else None)
            if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
                fake.queue(fake.copy_seconds)
                return tensor  # "on the GPU": the data stays where it is, only the queue grows
            return original(tensor, *args, **kwargs)

        def to_cuda(tensor, *args, **kwargs):
            return to(tensor, "cuda")

        m.setattr(torch.Tensor, "to", to)
        m.setattr(torch.Tensor, "cuda", to_cuda)
        # As on a GPU machine, even for a CPU measurement: the device asked for decides, not the machine.
        m.setattr(torch.cuda, "is_available", lambda: True)


class _Batches:
    """An iterable of (x, y) batches with x of shape (size, 3); fetching batch i spends fetch[i] seconds."""

    def __init__(self, clock: _FakeTime, sizes: list[int], fetch: list[float]) -> None:
        self.clock, self.sizes, self.fetch = clock, sizes, fetch
        self.batches = [(torch.zeros(n, 3), torch.arange(n)) for n in sizes]

    def __iter__(self):
        for batch, seconds in zip(self.batches, self.fetch):
            self.clock.spend(seconds)
            yield batch


def _throughput(kata, monkeypatch, fake: _FakeTime, loader, device: str, warmup: int):
    with monkeypatch.context() as m:
        fake.install(m, kata)
        return kata.samples_per_second(loader, torch.device(device), warmup)


def _check_rate(got, expected: float, what: str, wrong: dict[str, float]) -> None:
    """got must be `expected` (a float); if it is one of the `wrong` figures, say which mistake that is."""
    __tracebackhide__ = True
    check(isinstance(got, float), f"{what} returned {describe(got)}; expected a float (samples per second)")
    why = next((reason for reason, value in wrong.items() if math.isclose(got, value, rel_tol=1e-6)), "")
    check(
        math.isclose(got, expected, rel_tol=1e-6),
        f"{what} returned {got:.6g}; expected {expected:.6g} samples per second" + (f": {why}" if why else ""),
    )


@exercise("samples_per_second")
class TestSamplesPerSecond:
    def test_warm_up_batches_are_neither_timed_nor_counted(self, kata, monkeypatch):
        # Two slow first batches (workers starting), then five batches of 8 samples, 0.1 s each.
        fake = _FakeTime()
        loader = _Batches(fake, [8] * 7, [1.0, 1.0] + [0.1] * 5)
        got = _throughput(kata, monkeypatch, fake, loader, "cpu", warmup=2)
        _check_rate(
            got,
            40 / 0.5,
            "samples_per_second(2 slow warm-up batches, then 5 batches of 8 samples taking 0.1 s each, cpu, warmup_batches=2)",
            {
                "the warm-up time was counted: start the clock after the warm-up batches": 40 / 2.5,
                "the warm-up samples were counted": 56 / 0.5,
                "the warm-up samples and time were counted": 56 / 2.5,
                "it counted batches, not samples": 5 / 0.5,
            },
        )

    def test_samples_are_counted_not_batches_or_tensors(self, kata, monkeypatch):
        # Each batch is (x of shape (n, 3), y of shape (n,)); the last batch is short.
        fake = _FakeTime()
        loader = _Batches(fake, [8, 8, 8, 8, 3], [0.25] * 5)
        got = _throughput(kata, monkeypatch, fake, loader, "cpu", warmup=1)
        _check_rate(
            got,
            27 / 1.0,
            "samples_per_second(batches of 8, 8, 8, 8 and 3 samples, 0.25 s each, cpu, warmup_batches=1)",
            {
                "it counted batches, not samples (batch[0].shape[0] is the number of samples)": 4.0,
                "it counted len(batch), the number of tensors in a batch, not the samples": 8.0,
                "it counted elements (numel), not samples": 81.0,
                "it counted every timed batch as a full one: the last batch is short": 32.0,
            },
        )

    def test_every_batch_warm_up_included_is_moved_to_the_device(self, kata, monkeypatch):
        fake = _FakeTime(copy_seconds=0.01)
        loader = _Batches(fake, [4] * 5, [0.1] * 5)
        _throughput(kata, monkeypatch, fake, loader, "cuda", warmup=2)
        missing = [i for i, batch in enumerate(loader.batches) if not all(id(t) in fake.moved for t in batch)]
        check(
            not missing,
            f"samples_per_second(loader of 5 batches, cuda, warmup_batches=2) did not move batches {missing} to the "
            "device; expected every batch moved with move_batch, the warm-up ones included",
        )

    def test_waits_for_the_last_copies_before_stopping_the_clock(self, kata, monkeypatch):
        # Each batch takes 0.01 s to fetch and queues 2 x 0.05 s of copies: the GPU is the bottleneck.
        # Timed: the first fetch (the GPU idle), then five batches of copies back to back: 0.51 s.
        # The copies of the 2 warm-up batches are still running when the clock would start unsynchronized.
        fake = _FakeTime(copy_seconds=0.05)
        loader = _Batches(fake, [8] * 7, [0.01] * 7)
        got = _throughput(kata, monkeypatch, fake, loader, "cuda", warmup=2)
        _check_rate(
            got,
            40 / 0.51,
            "samples_per_second(7 batches of 8 samples, 0.01 s to fetch and 0.1 s to copy each, cuda, warmup_batches=2)",
            {
                "the clock stopped before the last copies had arrived: torch.cuda.synchronize() before reading it": 40
                / 0.05,
                "it did not wait for the warm-up copies before starting the clock: torch.cuda.synchronize() first": 40
                / 0.69,
                "it synchronized after every batch, so loading and copying never overlapped: synchronize only "
                "before each clock reading": 40 / 0.55,
            },
        )

    def test_gpu_work_queued_before_the_call_is_not_counted(self, kata, monkeypatch):
        fake = _FakeTime(copy_seconds=0.05)
        fake.queue(2.0)  # someone else's GPU work, still running when samples_per_second is called
        loader = _Batches(fake, [8] * 6, [0.01] * 6)
        got = _throughput(kata, monkeypatch, fake, loader, "cuda", warmup=1)
        _check_rate(
            got,
            40 / 0.51,  # as above: the first fetch, then five batches of copies
            "samples_per_second(6 batches of 8 samples, 0.1 s of copies each, cuda, warmup_batches=1) with 2 s of "
            "earlier GPU work still queued",
            {
                "it counted the earlier GPU work: torch.cuda.synchronize() before starting the clock": 40 / 2.59,
                "it synchronized after every batch, so loading and copying never overlapped: synchronize only "
                "before each clock reading": 40 / 0.55,
            },
        )

    def test_does_not_synchronize_for_the_cpu(self, kata, monkeypatch):
        fake = _FakeTime()
        _throughput(kata, monkeypatch, fake, _Batches(fake, [4] * 4, [0.1] * 4), "cpu", warmup=1)
        check(
            fake.syncs == 0,
            f"samples_per_second(loader, cpu) called torch.cuda.synchronize() {fake.syncs} times; expected none: "
            "synchronize only for a CUDA device (it raises on a machine without CUDA)",
        )

    def test_a_loader_with_nothing_after_the_warm_up_raises(self, kata, monkeypatch):
        fake = _FakeTime()
        with expect_raises(ValueError, r"(?i)warm", "samples_per_second(loader of 2 batches, cpu, warmup_batches=2)"):
            _throughput(kata, monkeypatch, fake, _Batches(fake, [4, 4], [0.1, 0.1]), "cpu", warmup=2)

    def test_measures_a_real_loader(self, kata):
        x, y = torch.randn(256, 8), torch.arange(256)
        loader = DataLoader(TensorDataset(x, y), batch_size=32)
        got = kata.samples_per_second(loader, torch.device("cpu"), 2)
        check(
            isinstance(got, float) and math.isfinite(got) and got > 0,
            f"samples_per_second(DataLoader of 256 samples, batch_size=32, cpu, 2) returned {describe(got)}; "
            "expected a positive float",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_pinned_copies_are_timed_until_they_arrive(self, kata, device):
        device = torch.device(device)
        batch = (torch.ones(64, 131072).pin_memory(), torch.arange(64).pin_memory())  # 32 MiB of float32
        batches = [batch] * 8

        def honest() -> float:
            torch.cuda.synchronize()
            start = time.perf_counter()
            for x, y in batches[2:]:
                x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            torch.cuda.synchronize()
            return 6 * 64 / (time.perf_counter() - start)

        honest()  # warm-up: the allocator's first blocks stay out of the reference
        reference = statistics.median(honest() for _ in range(3))
        got = kata.samples_per_second(batches, device, 2)
        check(
            isinstance(got, float) and reference / 4 <= got <= 4 * reference,
            f"samples_per_second(8 pinned batches of 32 MiB, cuda, 2) returned {describe(got)}; a synchronized "
            f"measurement gives {reference:.4g} samples per second. Far more means the clock stopped while the "
            "asynchronous copies were still running: torch.cuda.synchronize() before reading it",
        )

    @pytest.mark.parametrize("device", GPU_ONLY)
    def test_real_gpu_work_queued_before_the_call_is_not_counted(self, kata, device):
        device = torch.device(device)
        torch.manual_seed(0)
        a, b = torch.randn(8192, 8192, device=device), torch.randn(8192, 8192, device=device)

        def work() -> None:  # four 8192x8192 matmuls: tens of milliseconds on an H100 (a few with TF32)
            for _ in range(4):
                torch.matmul(a, b)

        work()
        torch.cuda.synchronize()  # warm-up: cuBLAS setup stays out of the timings
        start = time.perf_counter()
        work()
        torch.cuda.synchronize()
        work_seconds = time.perf_counter() - start
        batch = (torch.ones(64, 256).pin_memory(), torch.arange(64).pin_memory())
        work()  # queued, not waited for: still running when samples_per_second starts
        work()
        got = kata.samples_per_second([batch] * 10, device, 2)
        check(
            isinstance(got, float) and got > 0,
            f"samples_per_second(...) returned {describe(got)}; expected a positive float",
        )
        seconds = 8 * 64 / got
        check(
            seconds < 0.5 * work_seconds,
            f"samples_per_second(10 small pinned batches, cuda, 2) with {2 * work_seconds:.3f} s of matmuls still queued "
            f"measured {seconds:.4f} s for 8 batches; expected far less than {work_seconds:.3f} s: "
            "torch.cuda.synchronize() before starting the clock",
        )
