"""Tests for kata 10, datasets and DataLoaders: one class per exercise, in learning order.

References come from PyTorch itself (`pad_sequence`), from files the tests write to `tmp_path`, and
from counting: a loader that records every file it opens, sample indices read back out of the
batches. The worker tests start real worker processes (two per loader, a dataset of 8 samples);
they run each configuration once per session and share the batches (`_worker_runs`). They force
the "fork" start method: the kata files are loaded by path under a generated module name, which a
worker started with "spawn" or "forkserver" could not import again (the pickling test checks what
spawn would need).
"""

import functools
import itertools
import pickle
import random

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, TensorDataset

from dojo.stubs import STUB_TAG
from dojo.testing import DEVICES, check, check_tensor, describe, exercise, expect_raises

# The "meta" device exists on every machine (shape and dtype, no data): it shows where a tensor
# was created without needing a GPU.
META = torch.device("meta")


# --- PairDataset ------------------------------------------------------------------------------


def pair_tensors(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.arange(n) * 10


@exercise("PairDataset")
class TestPairDataset:
    def test_len_is_the_number_of_rows(self, kata):
        x, y = pair_tensors(5)
        got = len(kata.PairDataset(x, y))
        check(
            got == 5, f"len(PairDataset(x of shape (5, 3), y of shape (5,))) is {got}; expected 5, the number of rows"
        )

    def test_getitem_returns_the_pair_at_index_as_a_tuple(self, kata):
        x, y = pair_tensors(5)
        dataset = kata.PairDataset(x, y)
        for i in range(5):
            got = dataset[i]
            check(
                isinstance(got, tuple) and len(got) == 2,
                f"PairDataset(x, y)[{i}] returned {describe(got)}; expected a tuple (x[{i}], y[{i}])",
            )
            check_tensor(got[0], x[i], f"PairDataset(x, y)[{i}][0]")
            check_tensor(got[1], y[i], f"PairDataset(x, y)[{i}][1]")

    @pytest.mark.parametrize("index, row", [(-1, 4), (-5, 0)], ids=["-1", "-len"])
    def test_negative_indices_count_from_the_end(self, kata, index, row):
        x, y = pair_tensors(5)
        got = kata.PairDataset(x, y)[index]
        what = f"PairDataset(5 samples)[{index}]"
        check(
            isinstance(got, tuple) and len(got) == 2, f"{what} returned {describe(got)}; expected the pair at row {row}"
        )
        check_tensor(got[0], x[row], f"{what}[0] (negative indices count from the end: row {row})")
        check_tensor(got[1], y[row], f"{what}[1] (negative indices count from the end: row {row})")

    @pytest.mark.parametrize("index", [5, 6, -6], ids=["len", "len+1", "-len-1"])
    def test_an_index_out_of_range_raises_index_error(self, kata, index):
        dataset = kata.PairDataset(*pair_tensors(5))
        # Any message: the protocol (iteration stops at IndexError) only needs the type.
        with expect_raises(IndexError, None, f"PairDataset(5 samples)[{index}]"):
            dataset[index]

    def test_iterating_the_dataset_stops_after_the_last_sample(self, kata):
        x, y = pair_tensors(5)
        dataset = kata.PairDataset(x, y)
        # Without __iter__, `for` calls __getitem__(0), (1), ... until IndexError; islice stops
        # a dataset that never raises.
        got = list(itertools.islice(iter(dataset), 8))
        check(
            len(got) == 5,
            f"iterating PairDataset(5 samples) gave {len(got)}{'+' if len(got) == 8 else ''} samples; expected 5: "
            "`for` stops only when __getitem__ raises IndexError (an index that wraps around never does)",
        )

    def test_rows_that_do_not_match_raise_value_error_naming_both_counts(self, kata):
        x, _ = pair_tensors(5)
        with expect_raises(ValueError, r"5\D+4|4\D+5", "PairDataset(x with 5 rows, y with 4 rows)"):
            kata.PairDataset(x, torch.arange(4))

    def test_a_data_loader_batches_its_pairs(self, kata):
        x, y = pair_tensors(5)
        batches = list(DataLoader(kata.PairDataset(x, y), batch_size=2))
        check(
            len(batches) == 3,
            f"DataLoader(PairDataset(5 samples), batch_size=2) gave {len(batches)} batches; expected 3",
        )
        xb, yb = batches[0]
        check_tensor(xb, x[:2], "the first batch's x from DataLoader(PairDataset(x, y), batch_size=2)")
        check_tensor(yb, y[:2], "the first batch's y from DataLoader(PairDataset(x, y), batch_size=2)")


# --- LazyFileDataset --------------------------------------------------------------------------


TORCH_LOAD = torch.load  # the real one, even while a test watches torch.load


class CountingLoader:
    """A stand-in for torch.load that records the name of every file it opens."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, path):
        self.opened.append(str(path).replace("\\", "/").rsplit("/", 1)[-1])
        return TORCH_LOAD(path)


def sample_tensor(i: int) -> torch.Tensor:
    return torch.full((3,), float(i))


def write_samples(folder) -> list[str]:
    """sample_00.pt .. sample_04.pt holding tensors [i, i, i], written out of name order (3, 0, 4, 1, 2),
    and notes.txt, a file that is no sample. Returns the sample file names in name order."""
    for i in [3, 0, 4, 1, 2]:
        torch.save(sample_tensor(i), folder / f"sample_{i:02d}.pt")
    (folder / "notes.txt").write_text("not a sample")
    return [f"sample_{i:02d}.pt" for i in range(5)]


@exercise("LazyFileDataset")
class TestLazyFileDataset:
    def test_init_opens_no_file(self, kata, tmp_path, monkeypatch):
        write_samples(tmp_path)
        direct = []  # torch.load called by the dataset itself, bypassing `loader`
        monkeypatch.setattr(torch, "load", lambda *a, **k: direct.append(a) or TORCH_LOAD(*a, **k))
        counting = CountingLoader()
        kata.LazyFileDataset(tmp_path, loader=counting)
        opened = len(counting.opened) + len(direct)
        check(
            opened == 0,
            f"LazyFileDataset(folder of 5 files, loader=counting_loader) loaded {opened} file(s) in __init__; "
            "expected 0: __init__ keeps only the paths, __getitem__ loads",
        )

    def test_getitem_loads_exactly_the_one_file_asked_for(self, kata, tmp_path):
        names = write_samples(tmp_path)
        counting = CountingLoader()
        dataset = kata.LazyFileDataset(tmp_path, loader=counting)
        asked = []
        for index in [3, 0, 3]:
            got = dataset[index]
            asked.append(index)
            expected = [names[i] for i in asked]
            so_far = ", ".join(f"dataset[{i}]" for i in asked)
            check(
                counting.opened == expected,
                f"after {so_far}, the loader had opened {counting.opened}; expected {expected}: one load per "
                "__getitem__, of that sample's file only (and no cache)",
            )
            check_tensor(got, sample_tensor(index), f"LazyFileDataset(...)[{index}] (what loader(path) returned)")

    def test_len_counts_only_the_files_with_the_suffix(self, kata, tmp_path):
        write_samples(tmp_path)
        got = len(kata.LazyFileDataset(tmp_path, loader=CountingLoader()))
        check(
            got == 5,
            f"len(LazyFileDataset(folder with 5 .pt files and notes.txt)) is {got}; expected 5: only names ending "
            "with suffix='.pt' are samples",
        )

    def test_samples_come_in_file_name_order(self, kata, tmp_path):
        write_samples(tmp_path)  # written in the order 3, 0, 4, 1, 2
        dataset = kata.LazyFileDataset(tmp_path, loader=CountingLoader())
        got = [int(dataset[i][0]) if isinstance(dataset[i], torch.Tensor) else dataset[i] for i in range(5)]
        check(
            got == [0, 1, 2, 3, 4],
            f"LazyFileDataset(...)[0..4] held the samples of files {got}; expected sample_00.pt .. sample_04.pt in "
            "name order: sort the paths, the file system's listing order is not",
        )

    def test_the_default_loader_is_torch_load(self, kata, tmp_path):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path)
        check_tensor(dataset[2], sample_tensor(2), "LazyFileDataset(folder)[2] with the default loader (torch.load)")


# --- train_val_loaders ------------------------------------------------------------------------


def numbered(n: int) -> TensorDataset:
    """A dataset whose samples are their own indices."""
    return TensorDataset(torch.arange(n))


def visit(loader) -> list[int]:
    """The sample indices one pass over a loader of `numbered` gives, in order."""
    return [int(v) for batch in loader for v in batch[0]]


def in_order(subset) -> list[int]:
    return [int(subset[i][0]) for i in range(len(subset))]


def split(kata, n=20, val_fraction=0.2, batch_size=3, seed=0):
    got = kata.train_val_loaders(numbered(n), val_fraction, batch_size, seed)
    call = f"train_val_loaders({n} samples, val_fraction={val_fraction}, batch_size={batch_size}, seed={seed})"
    check(
        isinstance(got, tuple) and len(got) == 2 and all(isinstance(l, DataLoader) for l in got),
        f"{call} returned {describe(got)}; expected a tuple (train_loader, val_loader) of DataLoaders",
    )
    return got, call


@exercise("train_val_loaders")
class TestTrainValLoaders:
    @pytest.mark.parametrize(
        "n, fraction, n_train, n_val",
        [(20, 0.2, 16, 4), (9, 0.3, 6, 3), (7, 0.3, 5, 2), (100, 0.29, 71, 29)],
        ids=["20x0.2", "9x0.3", "7x0.3", "100x0.29"],
    )
    def test_validation_gets_the_rounded_fraction_and_training_the_rest(self, kata, n, fraction, n_train, n_val):
        (train, val), call = split(kata, n, fraction)
        got = (len(visit(train)), len(visit(val)))
        check(
            got == (n_train, n_val),
            f"{call}: the loaders gave {got[0]} training and {got[1]} validation samples; expected {n_train} and "
            f"{n_val}: n_val = round({fraction} * {n}) ({fraction * n!r} in floating point), n_train = {n} - n_val",
        )

    def test_the_parts_are_disjoint_and_cover_every_sample(self, kata):
        (train, val), call = split(kata)
        a, b = visit(train), visit(val)
        check(
            not set(a) & set(b), f"{call}: samples {sorted(set(a) & set(b))} are in both loaders; expected no overlap"
        )
        check(
            sorted(a + b) == list(range(20)), f"{call}: the loaders gave {sorted(a + b)}; expected each of 0..19 once"
        )

    def test_the_same_seed_gives_the_same_split_and_order_whatever_the_global_rng_did(self, kata):
        runs = []
        for before, after in [(1, 2), (3, 4)]:
            torch.manual_seed(before)  # someone used the global generator before the split...
            (train, val), call = split(kata, seed=7)
            torch.manual_seed(after)  # ... and before the loop
            runs.append((visit(train), sorted(visit(val))))
        (train_a, val_a), (train_b, val_b) = runs
        check(
            val_a == val_b,
            f"two calls of {call} put samples {val_a} and then {val_b} in validation when the global RNG had been "
            "used in between; expected the same split: random_split(..., generator=torch.Generator().manual_seed(seed))",
        )
        check(
            train_a == train_b,
            f"two calls of {call} gave the training orders {train_a} and {train_b} when the global RNG had been used "
            "in between; expected the same order: give the training DataLoader its own seeded generator too",
        )

    def test_different_seeds_give_different_splits(self, kata):
        (_, val_a), call = split(kata, seed=0)
        (_, val_b), _ = split(kata, seed=1)
        a, b = sorted(visit(val_a)), sorted(visit(val_b))
        check(
            a != b,
            f"{call} and the same with seed=1 both chose validation samples {a}; expected a random split per seed",
        )

    def test_leaves_the_global_random_generator_alone(self, kata):
        torch.manual_seed(123)
        before = torch.random.get_rng_state()
        _, call = split(kata, seed=5)
        check(
            torch.equal(torch.random.get_rng_state(), before),
            f"{call} changed the global random generator's state; expected it untouched: seed a torch.Generator of "
            "your own (torch.manual_seed here resets everyone else's random stream)",
        )

    def test_validation_visits_its_samples_in_order_every_time(self, kata):
        (_, val), call = split(kata, n=30, val_fraction=0.4)
        expected = in_order(val.dataset)
        first, second = visit(val), visit(val)
        check(
            first == expected and second == expected,
            f"{call}: the validation loader gave {first}, then {second}; expected its samples in dataset order "
            f"{expected} both times: shuffle=False for validation",
        )

    def test_training_shuffles_and_reshuffles_every_epoch(self, kata):
        (train, _), call = split(kata)
        first, second = visit(train), visit(train)
        check(
            first != in_order(train.dataset),
            f"{call}: the training loader gave its samples in dataset order {first}; expected shuffle=True",
        )
        check(
            first != second,
            f"{call}: two epochs of the training loader both gave {first}; expected a new order each epoch",
        )

    def test_both_loaders_use_batch_size_and_keep_the_last_batch(self, kata):
        (train, val), call = split(kata, batch_size=3)
        sizes = ([len(b[0]) for b in train], [len(b[0]) for b in val])
        check(
            sizes == ([3, 3, 3, 3, 3, 1], [3, 1]),
            f"{call}: batch sizes were {sizes[0]} (training) and {sizes[1]} (validation); expected [3, 3, 3, 3, 3, 1] "
            "and [3, 1]",
        )


# --- pad_collate -------------------------------------------------------------------------------

LENGTHS = [2, 5, 3]  # batch size 3, longest 5: (B, L) and (L, B) have different shapes
LABELS = [1, 0, 2]


def token_batch(device="cpu") -> list[tuple[torch.Tensor, int]]:
    """Token ids from 1 up (so a 0 can only be padding), shapes (2,), (5,), (3,)."""
    return [
        (torch.arange(1, n + 1, device=device) * (k + 1), label) for k, (n, label) in enumerate(zip(LENGTHS, LABELS))
    ]


def feature_batch() -> list[tuple[torch.Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(n, 4, generator=g), label) for n, label in zip(LENGTHS, LABELS)]


def collate(kata, batch, what: str, **kw):
    got = kata.pad_collate(batch, **kw)
    check(
        isinstance(got, tuple) and len(got) == 3,
        f"{what} returned {describe(got)}; expected a tuple (padded, lengths, labels)",
    )
    return got


BATCH_FIRST = "(batch first: shape (B, L_max, ...); pad_sequence needs batch_first=True)"


@exercise("pad_collate")
class TestPadCollate:
    def test_pads_token_ids_batch_first_with_zeros(self, kata):
        batch = token_batch()
        padded, _, _ = collate(kata, batch, "pad_collate(3 sequences of lengths 2, 5, 3)")
        expected = pad_sequence([s for s, _ in batch], batch_first=True)
        check_tensor(padded, expected, f"pad_collate(int64 sequences of lengths 2, 5, 3)[0] {BATCH_FIRST}")

    def test_pads_with_the_given_padding_value(self, kata):
        batch = feature_batch()
        what = "pad_collate(3 sequences of shape (L, 4), padding_value=-1.0)"
        padded, _, _ = collate(kata, batch, what, padding_value=-1.0)
        expected = pad_sequence([s for s, _ in batch], batch_first=True, padding_value=-1.0)
        check_tensor(padded, expected, f"{what}[0] {BATCH_FIRST}")

    def test_lengths_are_an_int64_cpu_tensor_of_the_original_lengths(self, kata):
        _, lengths, _ = collate(kata, token_batch(), "pad_collate(3 sequences of lengths 2, 5, 3)")
        check(
            isinstance(lengths, torch.Tensor),
            f"pad_collate(...)[1] (lengths) is {describe(lengths)}; expected a tensor: torch.tensor([len(s) for s in ...])",
        )
        check_tensor(lengths, torch.tensor(LENGTHS), "pad_collate(3 sequences of lengths 2, 5, 3)[1] (lengths)")

    def test_labels_are_an_int64_tensor(self, kata):
        _, _, labels = collate(kata, token_batch(), "pad_collate(samples with labels 1, 0, 2)")
        check_tensor(labels, torch.tensor(LABELS), "pad_collate(samples with labels 1, 0, 2)[2] (labels)")

    def test_works_as_a_data_loader_collate_fn(self, kata):
        samples = feature_batch() * 2
        loader = DataLoader(samples, batch_size=3, collate_fn=functools.partial(kata.pad_collate, padding_value=-1.0))
        batches = list(loader)
        check(
            len(batches) == 2,
            f"DataLoader(6 samples, batch_size=3, collate_fn=pad_collate) gave {len(batches)} batches; expected 2",
        )
        padded, lengths, labels = batches[1]
        expected = pad_sequence([s for s, _ in samples[3:]], batch_first=True, padding_value=-1.0)
        check_tensor(
            padded, expected, "the second batch of DataLoader(..., collate_fn=partial(pad_collate, padding_value=-1.0))"
        )
        check_tensor(lengths, torch.tensor(LENGTHS), "the second batch's lengths")

    @pytest.mark.parametrize("where", [*DEVICES, pytest.param(META, id="meta")])
    def test_padded_stays_on_the_sequences_device_and_lengths_on_the_cpu(self, kata, where):
        where = torch.device(where)
        padded, lengths, _ = collate(kata, token_batch(where), f"pad_collate(sequences on {where})")
        check(
            isinstance(padded, torch.Tensor) and padded.device.type == where.type,
            f"pad_collate(sequences on {where})[0] is {describe(padded)}; expected it on {where}, with the sequences",
        )
        check(
            isinstance(lengths, torch.Tensor) and lengths.device.type == "cpu",
            f"pad_collate(sequences on {where})[1] (lengths) is {describe(lengths)}; expected a CPU tensor: "
            "pack_padded_sequence requires CPU lengths (len(s) reads the shape, no device needed)",
        )


# --- seed_worker and make_reproducible_loader ----------------------------------------------------

BIG_SEED = 2**40 + 12345  # torch seeds go up to 2**64; numpy takes them below 2**32 only
N_SAMPLES, BATCH = 8, 2
NUMPY, OWN_RNG, PYRANDOM = 1, 2, 3  # columns of an AugmentedDataset sample after its index
RNG_NAMES = {NUMPY: "numpy's global RNG", OWN_RNG: "the dataset's own self.rng", PYRANDOM: "Python's random"}


@pytest.fixture
def keep_global_rngs():
    """Restore torch's, numpy's and Python's global generators after the test."""
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    yield
    torch.random.set_rng_state(states[0])
    np.random.set_state(states[1])
    random.setstate(states[2])


def call_seed_worker(kata, what: str) -> None:
    __tracebackhide__ = True
    try:
        kata.seed_worker(0)
        return
    except ValueError as err:  # numpy's "Seed must be between 0 and 2**32 - 1"
        if STUB_TAG in str(err):
            raise
        message = f"{what} raised ValueError: {err}; numpy takes seeds below 2**32: use torch.initial_seed() % 2**32"
    check(False, message)


def disturb_global_rngs(k: int) -> None:
    """What other code does between two runs: use (here: reseed) every global generator."""
    torch.manual_seed(1000 + k)
    np.random.seed(2000 + k)
    random.seed(3000 + k)


def epochs_of(loader: DataLoader, n_epochs: int) -> list[torch.Tensor]:
    """Each epoch's samples, stacked (N_SAMPLES, 4) in the order the loader gave them."""
    __tracebackhide__ = True
    if "fork" not in torch.multiprocessing.get_all_start_methods():
        pytest.skip("worker tests need the 'fork' start method (kata files cannot be re-imported by spawned workers)")
    if loader.num_workers > 0:
        loader.multiprocessing_context = "fork"
        loader.timeout = 60  # a worker that hangs fails the test instead of the whole run
    return [one_epoch(loader) for _ in range(n_epochs)]


def one_epoch(loader: DataLoader) -> torch.Tensor:
    """One pass, stacked. If a worker fails, its error is raised without the DataLoader's frames:
    a traceback that keeps the iterator alive makes its later clean-up wait 5 s per worker."""
    iterator = iter(loader)
    try:
        return torch.cat(list(iterator))
    except Exception as err:
        problem = err.with_traceback(None)
    del iterator  # shut the workers down now, while the iterator is still whole
    raise problem


_worker_cache: dict = {}


def _worker_runs(kata, which: str) -> list[list[torch.Tensor]]:
    """Two runs (fresh dataset, fresh loader, global RNGs used in between) of two epochs each.

    `which` is "seed_worker" (the test's own loader with kata.seed_worker as worker_init_fn,
    no shuffling) or "make_reproducible_loader" (the kata's loader). Computed once per kata
    module and shared by the tests that read it: each run starts two worker processes.
    """
    __tracebackhide__ = True
    key = (kata.__name__, which)
    if key not in _worker_cache:
        states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            runs = []
            for k in range(2):
                disturb_global_rngs(k)
                dataset = kata.AugmentedDataset(N_SAMPLES, seed=0)
                if which == "seed_worker":
                    loader = DataLoader(
                        dataset,
                        batch_size=BATCH,
                        num_workers=2,
                        worker_init_fn=kata.seed_worker,
                        generator=torch.Generator().manual_seed(0),
                    )
                else:
                    loader = kata.make_reproducible_loader(dataset, BATCH, seed=0)
                    loader_checks(loader)
                disturb_global_rngs(k + 10)
                runs.append(epochs_of(loader, 2))
        finally:
            torch.random.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        _worker_cache[key] = runs
    return _worker_cache[key]


def fmt(values: torch.Tensor) -> str:
    """Draws rounded for a message (4 digits tell repeated draws apart)."""
    return "[" + ", ".join(f"{v:.4f}" for v in values.tolist()) + "]"


def show(values: torch.Tensor, column: int) -> str:
    return str(values.int().tolist()) if column == 0 else fmt(values)


def all_distinct(values: torch.Tensor) -> bool:
    return len(set(values.tolist())) == len(values)


SEED_WORKER_LOADER = (
    "DataLoader(AugmentedDataset(8), batch_size=2, num_workers=2, worker_init_fn=seed_worker, generator=seeded)"
)


@exercise("seed_worker")
class TestSeedWorker:
    def test_seeds_numpy_from_torch_initial_seed_mod_2_32(self, kata, keep_global_rngs):
        torch.manual_seed(BIG_SEED)
        np.random.seed(0)
        what = "seed_worker(0) after torch.manual_seed(2**40 + 12345)"
        call_seed_worker(kata, what)
        got = np.random.random(3)
        expected = np.random.RandomState(BIG_SEED % 2**32).random_sample(3)
        check(
            np.array_equal(got, expected),  # the same generator from the same seed: bit-identical draws
            f"after {what}, np.random.random(3) gave {got.tolist()}; expected {expected.tolist()}, the draws after "
            "np.random.seed(torch.initial_seed() % 2**32)",
        )

    def test_seeds_python_random_from_torch_initial_seed_mod_2_32(self, kata, keep_global_rngs):
        torch.manual_seed(BIG_SEED)
        random.seed(0)
        what = "seed_worker(0) after torch.manual_seed(2**40 + 12345)"
        call_seed_worker(kata, what)
        got = [random.random() for _ in range(3)]
        reference = random.Random(BIG_SEED % 2**32)
        expected = [reference.random() for _ in range(3)]
        check(
            got == expected,
            f"after {what}, random.random() gave {got}; expected {expected}, the draws after "
            "random.seed(torch.initial_seed() % 2**32)",
        )

    def test_each_worker_draws_its_own_numbers_from_the_dataset_rng(self, kata):
        epoch = _worker_runs(kata, "seed_worker")[0][0]
        own = epoch[:, OWN_RNG]
        check(
            all_distinct(own),
            f"one epoch of {SEED_WORKER_LOADER} drew {fmt(own)} from the dataset's self.rng; expected 8 different "
            "numbers: each worker's copy of self.rng starts in the same state unless seed_worker replaces it "
            "(get_worker_info().dataset.rng = np.random.default_rng(seed))",
        )

    def test_dataset_rng_draws_repeat_exactly_on_a_second_run(self, kata):
        (first, _), (again, _) = _worker_runs(kata, "seed_worker")
        check(
            torch.equal(first[:, OWN_RNG], again[:, OWN_RNG]),
            f"two runs of {SEED_WORKER_LOADER} drew {fmt(first[:, OWN_RNG])} and then {fmt(again[:, OWN_RNG])} "
            "from the dataset's self.rng; expected the same: seed the new generator from torch.initial_seed()",
        )

    def test_a_new_epoch_draws_new_numbers_from_the_dataset_rng(self, kata):
        (first, second), _ = _worker_runs(kata, "seed_worker")
        shared = set(first[:, OWN_RNG].tolist()) & set(second[:, OWN_RNG].tolist())
        check(
            not shared,
            f"two epochs of {SEED_WORKER_LOADER} both drew {fmt(torch.tensor(sorted(shared)))} from the dataset's "
            "self.rng; expected new draws each epoch: seed from torch.initial_seed() (new every epoch), not from "
            "worker_id (the same every epoch)",
        )


REPRO_LOADER = "make_reproducible_loader(AugmentedDataset(8), batch_size=2, seed=0)"


def loader_checks(loader) -> None:
    __tracebackhide__ = True
    check(isinstance(loader, DataLoader), f"{REPRO_LOADER} returned {describe(loader)}; expected a DataLoader")
    check(
        loader.num_workers == 2,
        f"{REPRO_LOADER} has num_workers={loader.num_workers}; expected 2 (the default of its num_workers argument)",
    )


@exercise("make_reproducible_loader")
class TestMakeReproducibleLoader:
    def test_uses_num_workers_worker_processes(self, kata):
        loader = kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0, num_workers=1)
        check(
            isinstance(loader, DataLoader) and loader.num_workers == 1,
            f"make_reproducible_loader(..., num_workers=1) returned {describe(loader)} with num_workers="
            f"{getattr(loader, 'num_workers', None)}; expected a DataLoader with 1 worker",
        )
        loader_checks(kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0))

    def test_two_runs_give_identical_batches_whatever_the_global_rngs_did(self, kata):
        (first, _), (again, _) = _worker_runs(kata, "make_reproducible_loader")
        for column in (0, NUMPY, OWN_RNG, PYRANDOM):
            what = "sample order" if column == 0 else f"draws from {RNG_NAMES[column]}"
            check(
                torch.equal(first[:, column], again[:, column]),
                f"two runs of {REPRO_LOADER} (global RNGs used in between) gave different {what}: "
                f"{show(first[:, column], column)} and {show(again[:, column], column)}; expected the same: give the loader "
                "generator=torch.Generator().manual_seed(seed) and worker_init_fn=seed_worker",
            )

    def test_shuffles_and_reshuffles_every_epoch(self, kata):
        (first, second), _ = _worker_runs(kata, "make_reproducible_loader")
        order, next_order = first[:, 0].int().tolist(), second[:, 0].int().tolist()
        check(
            sorted(order) == list(range(N_SAMPLES)),
            f"one epoch of {REPRO_LOADER} gave samples {order}; expected each of 0..7 once",
        )
        check(
            order != list(range(N_SAMPLES)), f"{REPRO_LOADER} gave its samples in order {order}; expected shuffle=True"
        )
        check(
            order != next_order,
            f"two epochs of {REPRO_LOADER} both gave the order {order}; expected a new order each epoch",
        )

    def test_no_two_samples_share_an_augmentation(self, kata):
        (first, _), _ = _worker_runs(kata, "make_reproducible_loader")
        for column in (NUMPY, OWN_RNG, PYRANDOM):
            check(
                all_distinct(first[:, column]),
                f"one epoch of {REPRO_LOADER} drew {fmt(first[:, column])} from {RNG_NAMES[column]}; expected 8 "
                "different numbers: the two workers repeat each other (worker_init_fn=seed_worker reseeds each one)",
            )

    def test_a_new_epoch_gives_new_augmentations(self, kata):
        (first, second), _ = _worker_runs(kata, "make_reproducible_loader")
        for column in (NUMPY, OWN_RNG, PYRANDOM):
            shared = set(first[:, column].tolist()) & set(second[:, column].tolist())
            check(
                not shared,
                f"two epochs of {REPRO_LOADER} both drew {fmt(torch.tensor(sorted(shared)))} from {RNG_NAMES[column]}; expected new "
                "augmentations each epoch (worker_init_fn=seed_worker seeds from each epoch's new worker seeds)",
            )

    def test_worker_init_fn_and_dataset_can_be_pickled_for_spawned_workers(self, kata):
        loader = kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0)
        check(
            getattr(loader, "worker_init_fn", None) is not None,
            f"{REPRO_LOADER} has no worker_init_fn; expected worker_init_fn=seed_worker",
        )
        try:
            pickle.dumps((loader.worker_init_fn, loader.dataset))
            problem = ""
        except Exception as err:  # pickle raises PicklingError, AttributeError or TypeError
            problem = f"{type(err).__name__}: {err}"
        check(
            not problem,
            f"pickling {REPRO_LOADER}'s worker_init_fn failed ({problem}); expected it to pickle: with the 'spawn' start "
            "method (macOS, Windows) every worker receives it pickled. Pass the module-level seed_worker, not a lambda "
            "or a nested function",
        )
