"""Tests for kata 10, datasets and DataLoaders: one class per exercise, in learning order.

References come from PyTorch itself (`pad_sequence`), from files the tests write to `tmp_path`, and
from counting: a loader that records every file it opens, sample indices read back out of the
batches. The worker tests start real worker processes (two per loader, a dataset of 8 samples);
each configuration runs once per loaded kata module and its batches are shared (`_worker_runs`).
They force the "fork" start method: it is fast (a spawned worker imports torch again) and it works
whatever name the kata module was loaded under; what "spawn" needs beyond that, pickling, has a
test of its own.
"""

import functools
import itertools
import os
import pickle
import random
import weakref

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dojo.stubs import STUB_TAG
from dojo.testing import DEVICES, check, check_tensor, describe, exercise, expect_raises

# The "meta" device exists on every machine (shape and dtype, no data): it shows where a tensor
# was created without needing a GPU.
META = torch.device("meta")


# --- PairDataset ------------------------------------------------------------------------------


def pair_tensors(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """x of shape (n, 3) and labels y of shape (n,): the same number of rows, not the same shape."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.arange(n) * 10


def make_pairs(kata, x, y, what):
    __tracebackhide__ = True
    try:
        return kata.PairDataset(x, y)
    except ValueError as err:
        problem = str(err)  # reported outside the except block: no "during handling" chain
    check(
        False,
        f"{what} raised ValueError: {problem}; expected it to be accepted: x and y have the same number of rows "
        "(only the first dimension has to match)",
    )


PAIRS = "PairDataset(x of shape (5, 3), y of shape (5,))"


@exercise("PairDataset")
class TestPairDataset:
    def test_tensors_with_the_same_number_of_rows_are_accepted_whatever_their_other_dimensions(self, kata):
        make_pairs(kata, *pair_tensors(5), PAIRS)

    def test_len_is_the_number_of_rows_as_an_int(self, kata):
        dataset = make_pairs(kata, *pair_tensors(5), PAIRS)
        got = dataset.__len__()
        check(
            isinstance(got, int) and got == 5,
            f"{PAIRS}.__len__() returned {describe(got)}; expected the int 5, the number of rows",
        )

    def test_getitem_returns_the_pair_at_index_as_a_tuple(self, kata):
        x, y = pair_tensors(5)
        dataset = make_pairs(kata, x, y, PAIRS)
        for i in range(5):
            got = dataset[i]
            check(
                isinstance(got, tuple) and len(got) == 2,
                f"{PAIRS}[{i}] returned {describe(got)}; expected a tuple (x[{i}], y[{i}])",
            )
            check_tensor(got[0], x[i], f"{PAIRS}[{i}][0]")
            check_tensor(got[1], y[i], f"{PAIRS}[{i}][1]")

    @pytest.mark.parametrize("index, row", [(-1, 4), (-5, 0)], ids=["-1", "-len"])
    def test_negative_indices_count_from_the_end(self, kata, index, row):
        x, y = pair_tensors(5)
        what = f"PairDataset(5 samples)[{index}]"
        dataset = make_pairs(kata, x, y, PAIRS)
        try:
            got, problem = dataset[index], None
        except IndexError as err:
            got, problem = None, str(err)
        check(problem is None, f"{what} raised IndexError ({problem}); expected the pair at row {row}, from the end")
        check(
            isinstance(got, tuple) and len(got) == 2, f"{what} returned {describe(got)}; expected the pair at row {row}"
        )
        check_tensor(got[0], x[row], f"{what}[0] (negative indices count from the end: row {row})")
        check_tensor(got[1], y[row], f"{what}[1] (negative indices count from the end: row {row})")

    @pytest.mark.parametrize("index", [5, 6, -6], ids=["len", "len+1", "-len-1"])
    def test_an_index_out_of_range_raises_index_error(self, kata, index):
        dataset = make_pairs(kata, *pair_tensors(5), PAIRS)
        # Any message: the protocol (iteration stops at IndexError) only needs the type.
        with expect_raises(IndexError, None, f"PairDataset(5 samples)[{index}]"):
            dataset[index]

    def test_iterating_the_dataset_stops_after_the_last_sample(self, kata):
        dataset = make_pairs(kata, *pair_tensors(5), PAIRS)
        # Without __iter__, `for` calls __getitem__(0), (1), ... until IndexError; islice stops
        # a dataset that never raises.
        got = list(itertools.islice(iter(dataset), 8))
        check(
            len(got) == 5,
            f"iterating PairDataset(5 samples) gave {len(got)}{'+' if len(got) == 8 else ''} samples; expected 5: "
            "`for` stops only when __getitem__ raises IndexError",
        )

    def test_rows_that_do_not_match_raise_value_error_naming_both_counts(self, kata):
        x, _ = pair_tensors(5)
        with expect_raises(ValueError, r"5\D+4|4\D+5", "PairDataset(x with 5 rows, y with 4 rows)"):
            kata.PairDataset(x, torch.arange(4))

    def test_a_data_loader_batches_its_pairs(self, kata):
        x, y = pair_tensors(5)
        batches = list(DataLoader(make_pairs(kata, x, y, PAIRS), batch_size=2))
        check(
            len(batches) == 3,
            f"DataLoader(PairDataset(5 samples), batch_size=2) gave {len(batches)} batches; expected 3",
        )
        xb, yb = batches[0]
        check_tensor(xb, x[:2], "the first batch's x from DataLoader(PairDataset(x, y), batch_size=2)")
        check_tensor(yb, y[:2], "the first batch's y from DataLoader(PairDataset(x, y), batch_size=2)")


# --- LazyFileDataset --------------------------------------------------------------------------


TORCH_LOAD = torch.load  # the real one, even while a test watches torch.load
N_FILES = 6
WRITE_ORDER = [3, 0, 5, 1, 4, 2]  # not name order, so a listing in creation order is not sorted either


class CountingLoader:
    """A stand-in for torch.load that records the name of every file it opens."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, path):
        self.opened.append(os.path.basename(os.fspath(path)))
        return TORCH_LOAD(path)


def sample_tensor(i: int) -> torch.Tensor:
    return torch.full((3,), float(i))


def write_samples(folder) -> list[str]:
    """sample_00.pt .. sample_05.pt holding tensors [i, i, i], written out of name order; beside them
    files that are no samples (notes.txt, sample_02.pt.bak) and a subfolder with a .pt file of its own.
    Returns the sample file names in name order."""
    for i in WRITE_ORDER:
        torch.save(sample_tensor(i), folder / f"sample_{i:02d}.pt")
    (folder / "notes.txt").write_text("not a sample")
    (folder / "sample_02.pt.bak").write_text("not a sample either: the name does not end with .pt")
    (folder / "extra").mkdir()
    torch.save(sample_tensor(99), folder / "extra" / "sample_99.pt")
    return [f"sample_{i:02d}.pt" for i in range(N_FILES)]


FOLDER = f"a folder of {N_FILES} .pt files"


def value_of(sample) -> object:
    """Which sample_NN.pt a sample came from (its tensor holds NN), or what came back instead."""
    if isinstance(sample, torch.Tensor) and sample.numel() > 0 and sample.device.type != "meta":
        return int(sample.flatten()[0])
    return describe(sample)


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
            f"LazyFileDataset({FOLDER}, loader=counting_loader) loaded {opened} file(s) in __init__; "
            "expected 0: __init__ keeps only the paths, __getitem__ loads",
        )

    def test_len_counts_only_the_files_directly_inside_whose_names_end_with_the_suffix(self, kata, tmp_path):
        write_samples(tmp_path)
        got = len(kata.LazyFileDataset(tmp_path, loader=CountingLoader()))
        check(
            got == N_FILES,
            f"len(LazyFileDataset(folder)) is {got}; expected {N_FILES}, for a folder holding sample_00.pt .. "
            "sample_05.pt, notes.txt, sample_02.pt.bak and a subfolder extra/ with sample_99.pt: only the names "
            "ending with '.pt', directly inside the folder, are samples",
        )

    def test_the_loader_gets_the_full_path_of_one_sample_file(self, kata, tmp_path, monkeypatch):
        names = write_samples(tmp_path)
        monkeypatch.chdir(tmp_path / "extra")  # a bare file name would not be found from here
        got = []
        dataset = kata.LazyFileDataset(tmp_path, loader=lambda path: got.append(path) or "loaded")
        dataset[1]
        found = len(got) == 1 and isinstance(got[0], (str, os.PathLike)) and os.path.isfile(got[0])
        check(
            found and any(os.path.samefile(got[0], tmp_path / name) for name in names),
            f"LazyFileDataset(folder, loader=recorder)[1] called the loader with {got}; expected one call with the "
            "full path of one of the sample files (a str or a Path), a path that works from any working directory",
        )

    def test_samples_come_in_file_name_order(self, kata, tmp_path):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path, loader=CountingLoader())
        got = [value_of(dataset[i]) for i in range(N_FILES)]
        check(
            got == list(range(N_FILES)),
            f"LazyFileDataset({FOLDER})[0..5] came from the files numbered {got} (sample_NN.pt holds NN); "
            f"expected sample_00.pt .. sample_05.pt in name order (they were written in the order {WRITE_ORDER})",
        )

    def test_getitem_loads_exactly_the_one_file_asked_for_at_every_call(self, kata, tmp_path):
        write_samples(tmp_path)
        counting = CountingLoader()
        dataset = kata.LazyFileDataset(tmp_path, loader=counting)
        first = {}
        for call, index in enumerate([3, 0, 3]):
            before = len(counting.opened)
            got = dataset[index]
            new = counting.opened[before:]
            which = ["the first call", "the second call", "the third call, the second"][call]
            check(
                len(new) == 1,
                f"{which} dataset[{index}] of LazyFileDataset({FOLDER}, loader=counting_loader) made the loader open "
                f"{new}; expected exactly one file, that sample's, at every call: no loading of other files, and no "
                "cache that answers instead",
            )
            first.setdefault(index, new[0])
            check(
                new[0] == first[index],
                f"the second dataset[{index}] opened {new[0]}, the first one {first[index]}; expected the same file",
            )
            check_tensor(got, TORCH_LOAD(tmp_path / new[0]), f"dataset[{index}] (expected what loader(path) returned)")

    @pytest.mark.parametrize("index, number", [(-1, N_FILES - 1), (-N_FILES, 0)], ids=["-1", "-len"])
    def test_negative_indices_count_from_the_end(self, kata, tmp_path, index, number):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path, loader=CountingLoader())
        got = value_of(dataset[index])
        check(
            got == number,
            f"LazyFileDataset({FOLDER})[{index}] came from file {got}; expected sample_{number:02d}.pt, counted from "
            "the end",
        )

    def test_an_index_out_of_range_raises_index_error(self, kata, tmp_path):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path, loader=CountingLoader())
        with expect_raises(IndexError, None, f"LazyFileDataset({FOLDER})[{N_FILES}]"):  # any message
            dataset[N_FILES]

    def test_a_suffix_with_two_dots_selects_the_names_ending_with_it(self, kata, tmp_path):
        for name in ["b.tar.gz", "notes.gz", "a.tar.gz", "old.tar", "day.1.tar.gz"]:
            (tmp_path / name).write_text(name)
        dataset = kata.LazyFileDataset(
            tmp_path, loader=lambda path: os.path.basename(os.fspath(path)), suffix=".tar.gz"
        )
        got = [dataset[i] for i in range(len(dataset))]
        expected = ["a.tar.gz", "b.tar.gz", "day.1.tar.gz"]
        check(
            got == expected,
            f"LazyFileDataset(folder of a.tar.gz, b.tar.gz, day.1.tar.gz, notes.gz, old.tar, suffix='.tar.gz') gave "
            f"the files {got}; expected {expected}: every name that ends with the suffix, whatever comes before it",
        )

    def test_names_are_sorted_as_strings(self, kata, tmp_path):
        for name in ["clip_9.pt", "clip_10.pt", "clip_1.pt"]:
            (tmp_path / name).write_text(name)
        dataset = kata.LazyFileDataset(tmp_path, loader=lambda path: os.path.basename(os.fspath(path)))
        got = [dataset[i] for i in range(len(dataset))]
        expected = ["clip_1.pt", "clip_10.pt", "clip_9.pt"]
        check(
            got == expected,
            f"LazyFileDataset(folder of clip_1.pt, clip_9.pt, clip_10.pt) gave the files {got}; expected {expected}: "
            "the names sorted as strings (character by character, so clip_10 comes before clip_9)",
        )

    def test_the_folder_may_be_given_as_a_str(self, kata, tmp_path):
        write_samples(tmp_path)
        try:
            dataset, problem = kata.LazyFileDataset(str(tmp_path), loader=CountingLoader()), None
        except (AttributeError, TypeError) as err:  # a Path method called on a str, a str joined with /
            dataset, problem = None, f"{type(err).__name__}: {err}"
        check(
            problem is None,
            f"LazyFileDataset(str(folder)) raised {problem}; expected a folder given as a str to work as a Path does",
        )
        check(len(dataset) == N_FILES, f"len(LazyFileDataset(str(folder))) is {len(dataset)}; expected {N_FILES}")
        check_tensor(dataset[4], sample_tensor(4), "LazyFileDataset(str(folder))[4]")

    def test_the_default_loader_is_torch_load(self, kata, tmp_path):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path)
        check_tensor(dataset[2], sample_tensor(2), "LazyFileDataset(folder)[2] with the default loader (torch.load)")

    def test_the_dataset_survives_pickling_for_spawned_worker_processes(self, kata, tmp_path):
        write_samples(tmp_path)
        dataset = kata.LazyFileDataset(tmp_path)
        try:
            copy, problem = pickle.loads(pickle.dumps(dataset)), None
        except Exception as err:  # PicklingError, TypeError or AttributeError, by what failed
            copy, problem = None, f"{type(err).__name__}: {err}"
        check(
            problem is None,
            f"pickling LazyFileDataset(folder) failed ({problem}); expected it to pickle: a worker started with "
            "'spawn' (macOS, Windows) receives the dataset pickled",
        )
        check_tensor(copy[2], sample_tensor(2), "pickle.loads(pickle.dumps(LazyFileDataset(folder)))[2]")


# --- train_val_loaders ------------------------------------------------------------------------


def numbered(n: int) -> TensorDataset:
    """A dataset whose samples are their own indices."""
    return TensorDataset(torch.arange(n))


def visit(loader) -> list[int]:
    """The sample indices one pass over a loader of `numbered` gives, in order."""
    return [int(v) for batch in loader for v in batch[0]]


def split(kata, n=20, val_fraction=0.2, batch_size=1, seed=0):
    got = kata.train_val_loaders(numbered(n), val_fraction, batch_size, seed)
    call = f"train_val_loaders({n} samples, val_fraction={val_fraction}, batch_size={batch_size}, seed={seed})"
    check(
        isinstance(got, tuple) and len(got) == 2 and all(isinstance(part, DataLoader) for part in got),
        f"{call} returned {describe(got)}; expected a tuple (train_loader, val_loader) of DataLoaders",
    )
    return got, call


@exercise("train_val_loaders")
class TestTrainValLoaders:
    @pytest.mark.parametrize(
        "n, fraction, n_train, n_val",
        [(20, 0.2, 16, 4), (9, 0.3, 6, 3), (7, 0.3, 5, 2), (100, 0.29, 71, 29), (11, 0.7, 3, 8)],
        ids=["20x0.2", "9x0.3", "7x0.3", "100x0.29", "11x0.7"],
    )
    def test_validation_gets_the_rounded_fraction_and_training_the_rest(self, kata, n, fraction, n_train, n_val):
        (train, val), call = split(kata, n, fraction)
        got = (len(visit(train)), len(visit(val)))
        check(
            got == (n_train, n_val),
            f"{call}: the loaders gave {got[0]} training and {got[1]} validation samples; expected {n_train} and "
            f"{n_val}: {fraction} * {n} is {fraction * n!r} in floating point, nearest to {n_val}, and training "
            "holds the rest",
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
            f"two calls of {call} put samples {val_a} and then {val_b} in validation, the global random generator "
            "having been reseeded before each; expected the same split: it must depend on seed alone",
        )
        check(
            train_a == train_b,
            f"two calls of {call} gave the training orders {train_a} and {train_b}, the global random generator "
            "having been reseeded in between; expected the same order: it must depend on seed alone",
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
            f"{call} changed the state of torch's global random generator (drew from it or reseeded it); expected it "
            "untouched",
        )

    def test_validation_visits_its_samples_in_the_same_order_every_time(self, kata):
        (_, val), call = split(kata, n=30, val_fraction=0.4)
        first, second = visit(val), visit(val)
        check(
            first == second,
            f"{call}: the validation loader gave {first}, then {second}; expected the same order on every pass "
            "(no shuffling)",
        )

    def test_training_reshuffles_every_epoch(self, kata):
        (train, _), call = split(kata)
        first, second = visit(train), visit(train)
        check(
            first != second,
            f"{call}: two epochs of the training loader both gave {first}; expected a new order each epoch (shuffled)",
        )

    def test_a_validation_pass_does_not_change_the_next_training_order(self, kata):
        (train, _), call = split(kata, seed=3)
        plain = [visit(train), visit(train)]
        (train, val), _ = split(kata, seed=3)
        with_val = [visit(train)]
        visit(val)
        with_val.append(visit(train))
        check(
            plain[0] == with_val[0] and plain[1] == with_val[1],
            f"{call}: the second training epoch gave {plain[1]} after nothing but the first, and {with_val[1]} with "
            "a validation pass in between; expected the same order: a pass over the validation loader must not move "
            "the random stream the training loader draws its orders from",
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

LENGTHS = [2, 5, 3]  # batch size 3, longest 5: (B, L) and (L, B) have different shapes; not sorted
LABELS = [1, 0, 2]


def token_batch(device="cpu") -> list[tuple[torch.Tensor, int]]:
    """Token ids from 1 up (so a 0 can only be padding), shapes (2,), (5,), (3,)."""
    if torch.device(device).type == "meta":  # no values; torch.empty on meta is instant, arange is not
        return [(torch.empty(n, dtype=torch.int64, device=device), label) for n, label in zip(LENGTHS, LABELS)]
    return [
        (torch.arange(1, n + 1, device=device) * (k + 1), label) for k, (n, label) in enumerate(zip(LENGTHS, LABELS))
    ]


def feature_batch() -> list[tuple[torch.Tensor, int]]:
    """Feature vectors, shapes (2, 4), (5, 4), (3, 4), values in (0, 1) (never 0.0 or -1.0)."""
    g = torch.Generator().manual_seed(0)
    return [
        (torch.rand(n, 4, generator=g, dtype=torch.float64) * 0.9 + 0.05, label) for n, label in zip(LENGTHS, LABELS)
    ]


def collate(kata, batch, what: str, **kw):
    __tracebackhide__ = True
    got = kata.pad_collate(batch, **kw)
    check(
        isinstance(got, tuple) and len(got) == 3,
        f"{what} returned {describe(got)}; expected a tuple (padded, lengths, labels)",
    )
    return got


def distinct(values: torch.Tensor) -> str:
    found = sorted(set(values.flatten().tolist()))
    return ", ".join(f"{v:g}" for v in found[:6]) + (", ..." if len(found) > 6 else "")


def check_padded(got, sequences, padding_value, what: str) -> None:
    """`got` must be the batch-first padding of `sequences`: shape, dtype, device, each row's start,
    then the padding, each with a message that shows what is wrong with it."""
    __tracebackhide__ = True
    lengths = [len(s) for s in sequences]
    b, l_max, features = len(sequences), max(lengths), tuple(sequences[0].shape[1:])
    shape = (b, l_max, *features)
    check(isinstance(got, torch.Tensor), f"{what}[0] (padded) is {describe(got)}; expected a tensor of shape {shape}")
    if tuple(got.shape) != shape:
        time_first = (l_max, b, *features)
        why = (
            f": that is (L_max, B{', F' if features else ''}), one column per sample; expected one row per sample "
            "(batch first)"
            if tuple(got.shape) == time_first
            else f" = (B, L_max{', F' if features else ''})"
        )
        check(False, f"{what}[0] (padded) has shape {tuple(got.shape)}; expected {shape}{why}")
    check(
        got.dtype == sequences[0].dtype,
        f"{what}[0] (padded) has dtype {got.dtype}; expected {sequences[0].dtype}, the sequences' dtype",
    )
    check(
        got.device == sequences[0].device,
        f"{what}[0] (padded) is on {got.device}; expected it on {sequences[0].device}, with the sequences",
    )
    if got.device.type == "meta":
        return
    got = got.detach().cpu()
    for i, (seq, n) in enumerate(zip(sequences, lengths)):
        seq = seq.cpu()
        if not torch.equal(got[i, :n], seq):
            other = next(
                (j for j, s in enumerate(sequences) if len(s) <= l_max and torch.equal(got[i, : len(s)], s.cpu())), None
            )
            why = (
                f"; it starts with sequence {other} instead: keep the samples in the order of batch"
                if other is not None and other != i
                else ""
            )
            check(
                False,
                f"{what}[0] (padded): row {i} does not start with sequence {i} (length {n}): its first {n} positions "
                f"hold {describe(got[i, :n])}; expected {describe(seq)}{why}",
            )
    past_end = torch.cat([got[i, n:].flatten() for i, n in enumerate(lengths)])
    check(
        bool((past_end == padding_value).all()),
        f"{what}[0] (padded): the {past_end.numel()} positions past the sequences' ends hold the values "
        f"{{{distinct(past_end)}}}; expected {padding_value:g} (padding_value) in each of them",
    )


def check_int64_cpu(got, expected: list[int], what: str, *, order_note: str = "") -> None:
    __tracebackhide__ = True
    want = f"tensor({expected}) of dtype int64 on the CPU"
    check(isinstance(got, torch.Tensor), f"{what} is {describe(got)}; expected a tensor: {want}")
    check(got.device.type == "cpu", f"{what} is {describe(got)}; expected it on the CPU: {want}")
    check(got.dtype == torch.int64, f"{what} has dtype {got.dtype}; expected int64: {want}")
    values = got.tolist()
    note = order_note if sorted(values) == sorted(expected) and values != expected else ""
    check(values == expected, f"{what} is {describe(got)}; expected {want}{note}")


@exercise("pad_collate")
class TestPadCollate:
    def test_pads_token_ids_batch_first_with_zeros_by_default(self, kata):
        batch = token_batch()
        what = "pad_collate(3 int64 sequences of lengths 2, 5, 3)"
        padded, _, _ = collate(kata, batch, what)
        check_padded(padded, [s for s, _ in batch], 0, what)

    def test_pads_feature_vectors_with_the_given_padding_value(self, kata):
        batch = feature_batch()
        what = "pad_collate(3 float64 sequences of shapes (2, 4), (5, 4), (3, 4), padding_value=-1.0)"
        padded, _, _ = collate(kata, batch, what, padding_value=-1.0)
        check_padded(padded, [s for s, _ in batch], -1.0, what)

    def test_lengths_are_an_int64_cpu_tensor_of_the_original_lengths_in_batch_order(self, kata):
        _, lengths, _ = collate(kata, token_batch(), "pad_collate(3 sequences of lengths 2, 5, 3)")
        check_int64_cpu(
            lengths,
            LENGTHS,
            "pad_collate(3 sequences of lengths 2, 5, 3)[1] (lengths)",
            order_note=": the lengths of the sequences in the order of batch",
        )

    def test_lengths_stay_right_where_a_sequence_holds_the_padding_value(self, kata):
        batch = [(torch.tensor([4, 0, 7]), 0), (torch.tensor([0, 0]), 1), (torch.tensor([5, 6, 0, 0, 0]), 2)]
        what = "pad_collate(sequences [4, 0, 7], [0, 0], [5, 6, 0, 0, 0]; padding_value 0)"
        padded, lengths, _ = collate(kata, batch, what)
        check_padded(padded, [s for s, _ in batch], 0, what)
        check_int64_cpu(lengths, [3, 2, 5], f"{what}[1] (lengths)")

    def test_labels_are_an_int64_tensor_in_batch_order(self, kata):
        what = "pad_collate(samples with labels 1, 0, 2)[2] (labels)"
        _, _, labels = collate(kata, token_batch(), what)
        check(isinstance(labels, torch.Tensor), f"{what} is {describe(labels)}; expected tensor([1, 0, 2]) (int64)")
        check_tensor(labels.cpu(), torch.tensor(LABELS), what)

    def test_a_batch_of_one_keeps_every_dimension(self, kata):
        seq = torch.arange(1, 5)
        what = "pad_collate([(tensor([1, 2, 3, 4]), 7)])"
        padded, lengths, labels = collate(kata, [(seq, 7)], what)
        check_padded(padded, [seq], 0, what)
        check_int64_cpu(lengths, [4], f"{what}[1] (lengths)")
        check(
            isinstance(labels, torch.Tensor) and tuple(labels.shape) == (1,) and labels.tolist() == [7],
            f"{what}[2] (labels) is {describe(labels)}; expected tensor([7]) of shape (1,)",
        )

    def test_works_as_a_data_loader_collate_fn(self, kata):
        samples = feature_batch() * 2
        loader = DataLoader(samples, batch_size=3, collate_fn=functools.partial(kata.pad_collate, padding_value=-1.0))
        what = "the second batch of DataLoader(6 samples, batch_size=3, collate_fn=partial(pad_collate, padding_value=-1.0))"
        batches = list(loader)
        check(
            len(batches) == 2,
            f"DataLoader(6 samples, batch_size=3, collate_fn=pad_collate) gave {len(batches)} batches; expected 2",
        )
        check(
            isinstance(batches[1], (tuple, list)) and len(batches[1]) == 3,
            f"{what} is {describe(batches[1])}; expected (padded, lengths, labels)",
        )
        padded, lengths, _ = batches[1]
        check_padded(padded, [s for s, _ in samples[3:]], -1.0, what)
        check_int64_cpu(lengths, LENGTHS, f"{what}[1] (lengths)")

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
            f"pad_collate(sequences on {where})[1] (lengths) is {describe(lengths)}; expected a tensor on the CPU, "
            "whatever the sequences' device",
        )


# --- seed_worker and make_reproducible_loader ----------------------------------------------------

N_SAMPLES, BATCH = 8, 2
NUMPY, OWN_RNG, PYRANDOM = 1, 2, 3  # columns of an AugmentedDataset sample after its index
STREAMS = {NUMPY: "numpy's global generator", OWN_RNG: "the dataset's own self.rng", PYRANDOM: "Python's random"}


class WorkerFailure(Exception):
    """A pass over a loader that failed in a worker process; str() is the message for the learner."""


def disturb_global_rngs(k: int) -> None:
    """What other code does between two runs: use (here: reseed) every global generator."""
    torch.manual_seed(1000 + k)
    np.random.seed(2000 + k)
    random.seed(3000 + k)


def forked(loader: DataLoader) -> DataLoader:
    __tracebackhide__ = True
    if "fork" not in torch.multiprocessing.get_all_start_methods():
        pytest.skip("worker tests need the 'fork' start method (a spawned worker would import torch again)")
    if loader.num_workers > 0:
        loader.multiprocessing_context = "fork"
        loader.timeout = 60  # a worker that hangs fails the test instead of the whole run
    return loader


def one_epoch(loader: DataLoader, what: str) -> list:
    """One pass, as a list of batches. A worker's error becomes a WorkerFailure without the
    DataLoader's frames: a traceback that keeps the iterator alive makes its later clean-up wait
    5 s per worker. An unfilled stub's NotImplementedError stays what it is."""
    iterator = iter(loader)
    try:
        return list(iterator)
    except Exception as err:
        # The re-raised error and its traceback's frames refer to each other (and to the iterator):
        # cut the cycle, or the iterator waits for the garbage collector.
        err.__traceback__ = None
        text = str(err)
        if STUB_TAG in text:
            problem = NotImplementedError(next(line for line in text.splitlines() if STUB_TAG in line).strip())
        else:
            last = next((line for line in reversed(text.splitlines()) if line.strip()), type(err).__name__)
            message = f"a pass over {what} failed in a worker process: {last.strip()}"
            if "Seed must be between 0 and 2**32 - 1" in text:
                message += " (a worker's torch seed is usually far above 2**32; numpy's global generator takes seeds below it only)"
            problem = WorkerFailure(message)
    del iterator  # shut the workers down now, while the iterator is still whole
    raise problem


_worker_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _worker_runs(kata, which: str) -> list[list[torch.Tensor]]:
    """[[epoch 1, epoch 2], [epoch 1]]: two runs (a fresh dataset and loader each, the global
    generators reseeded in between) of AugmentedDataset(8) through two worker processes, each epoch
    stacked to (8, 4) in the order the loader gave the samples.

    `which` is "seed_worker" (the test's own loader with kata.seed_worker as worker_init_fn, no
    shuffling) or "make_reproducible_loader" (the kata's loader). Computed once per loaded kata
    module (a module object, not a name: a test process may load many versions of one kata) and
    shared by the tests that read it; a failure is kept and reported by each of them.
    """
    __tracebackhide__ = True
    cache = _worker_cache.setdefault(kata, {})
    if which not in cache:
        states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            runs = []
            for k, n_epochs in enumerate([2, 1]):
                disturb_global_rngs(k)
                dataset = kata.AugmentedDataset(N_SAMPLES, seed=0)
                if which == "seed_worker":
                    what = SEED_WORKER_LOADER
                    loader = DataLoader(
                        dataset,
                        batch_size=BATCH,
                        num_workers=2,
                        worker_init_fn=kata.seed_worker,
                        generator=torch.Generator().manual_seed(0),
                    )
                else:
                    what = REPRO_LOADER
                    loader = kata.make_reproducible_loader(dataset, BATCH, seed=0)
                    loader_checks(loader)
                forked(loader)
                disturb_global_rngs(k + 10)
                epochs = []
                for _ in range(n_epochs):
                    batches = one_epoch(loader, what)
                    epochs.append(torch.cat(batches))
                    disturb_global_rngs(k + 20)
                runs.append(epochs)
            cache[which] = runs
        except (WorkerFailure, NotImplementedError) as failure:
            cache[which] = failure
        finally:
            torch.random.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
    got = cache[which]
    if isinstance(got, NotImplementedError):
        raise NotImplementedError(str(got))  # an unfilled stub: the test is TODO
    check(not isinstance(got, WorkerFailure), str(got))
    return got


def fmt(values: torch.Tensor) -> str:
    """Draws rounded for a message (4 digits tell repeated draws apart)."""
    return "[" + ", ".join(f"{v:.4f}" for v in values.tolist()) + "]"


def show(values: torch.Tensor, column: int) -> str:
    return str(values.int().tolist()) if column == 0 else fmt(values)


def all_distinct(values: torch.Tensor) -> bool:
    return len(set(values.tolist())) == len(values)


# With two workers and batches of two, batch k comes from worker k % 2: rows 0, 1, 4, 5 of an epoch
# (in the loader's order) from worker 0, rows 2, 3, 6, 7 from worker 1.
WORKER_0_ROWS, WORKER_1_ROWS = [0, 1, 4, 5], [2, 3, 6, 7]


def repeats_note(values: torch.Tensor) -> str:
    """What a column with repeated draws shows: the second worker repeating the first, or not."""
    if torch.equal(values[WORKER_0_ROWS], values[WORKER_1_ROWS]):
        return ": worker 1 drew exactly what worker 0 drew (rows 0, 1, 4, 5 come from worker 0, rows 2, 3, 6, 7 from worker 1)"
    return ""


SEED_WORKER_LOADER = (
    "DataLoader(AugmentedDataset(8), batch_size=2, num_workers=2, worker_init_fn=seed_worker, generator=seeded)"
)


@exercise("seed_worker")
class TestSeedWorker:
    def test_no_two_workers_share_a_draw_from_any_stream(self, kata):
        epoch = _worker_runs(kata, "seed_worker")[0][0]
        for column, stream in STREAMS.items():
            check(
                all_distinct(epoch[:, column]),
                f"one epoch of {SEED_WORKER_LOADER} drew {fmt(epoch[:, column])} from {stream}; expected 8 different "
                f"numbers{repeats_note(epoch[:, column])}",
            )

    def test_every_draw_repeats_exactly_on_a_second_run(self, kata):
        (first, _), (again,) = _worker_runs(kata, "seed_worker")
        for column, stream in STREAMS.items():
            check(
                torch.equal(first[:, column], again[:, column]),
                f"two runs of {SEED_WORKER_LOADER} (the main process's global generators reseeded in between) drew "
                f"{fmt(first[:, column])} and then {fmt(again[:, column])} from {stream}; expected the same draws: "
                "they must follow from the worker's torch seed alone",
            )

    def test_a_new_epoch_draws_new_numbers_from_every_stream(self, kata):
        (first, second), _ = _worker_runs(kata, "seed_worker")
        for column, stream in STREAMS.items():
            shared = set(first[:, column].tolist()) & set(second[:, column].tolist())
            check(
                not shared,
                f"two epochs of {SEED_WORKER_LOADER} both drew {fmt(torch.tensor(sorted(shared)))} from {stream}; "
                "expected new draws each epoch: a stream seeded from something that stays the same from epoch to "
                "epoch (the worker id, for one) replays the same augmentations",
            )

    def test_a_dataset_without_an_rng_works_too(self, kata):
        loader = forked(
            DataLoader(TensorDataset(torch.arange(4)), batch_size=2, num_workers=1, worker_init_fn=kata.seed_worker)
        )
        what = "DataLoader(TensorDataset(torch.arange(4)), batch_size=2, num_workers=1, worker_init_fn=seed_worker)"
        states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            batches, problem = one_epoch(loader, what), None
        except WorkerFailure as failure:
            batches, problem = None, str(failure)
        finally:
            torch.random.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
        check(problem is None, f"{problem} (that dataset has no rng attribute)")
        got = [int(v) for batch in batches for v in batch[0]]
        check(got == [0, 1, 2, 3], f"one pass over {what} gave the samples {got}; expected [0, 1, 2, 3]")


REPRO_LOADER = "make_reproducible_loader(AugmentedDataset(8), batch_size=2, seed=0)"


def loader_checks(loader) -> None:
    __tracebackhide__ = True
    check(isinstance(loader, DataLoader), f"{REPRO_LOADER} returned {describe(loader)}; expected a DataLoader")
    check(
        loader.num_workers == 2,
        f"{REPRO_LOADER} has num_workers={loader.num_workers}; expected 2 (the default of its num_workers argument)",
    )


def order_without_workers(kata, seed: int, batch_size: int = BATCH) -> tuple[list[int], list[int]]:
    """(sample order, batch sizes) of one epoch of make_reproducible_loader(..., num_workers=0)."""
    __tracebackhide__ = True
    loader = kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), batch_size, seed=seed, num_workers=0)
    check(
        isinstance(loader, DataLoader),
        f"make_reproducible_loader(...) returned {describe(loader)}; expected a DataLoader",
    )
    states = np.random.get_state(), random.getstate()
    try:
        batches = list(loader)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    return [int(v) for batch in batches for v in batch[:, 0]], [len(batch) for batch in batches]


@exercise("make_reproducible_loader")
class TestMakeReproducibleLoader:
    def test_uses_num_workers_worker_processes(self, kata):
        loader = kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0, num_workers=1)
        what = "make_reproducible_loader(AugmentedDataset(8), batch_size=2, seed=0, num_workers=1)"
        check(isinstance(loader, DataLoader), f"{what} returned {describe(loader)}; expected a DataLoader")
        check(
            loader.num_workers == 1,
            f"{what} returned a DataLoader with num_workers={loader.num_workers}; expected 1 worker process",
        )
        loader_checks(kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0))

    def test_batches_hold_batch_size_samples(self, kata):
        order, sizes = order_without_workers(kata, seed=0, batch_size=4)
        what = "make_reproducible_loader(AugmentedDataset(8), batch_size=4, seed=0, num_workers=0)"
        check(sizes == [4, 4], f"one epoch of {what} gave batches of {sizes} samples; expected [4, 4]")
        check(
            sorted(order) == list(range(N_SAMPLES)),
            f"one epoch of {what} gave samples {order}; expected each of 0..7 once",
        )

    def test_building_the_loader_leaves_the_global_random_generator_alone(self, kata):
        torch.manual_seed(123)
        before = torch.random.get_rng_state()
        kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0)
        check(
            torch.equal(torch.random.get_rng_state(), before),
            f"{REPRO_LOADER} changed the state of torch's global random generator (drew from it or reseeded it); "
            "expected it untouched",
        )

    def test_two_runs_give_identical_batches_whatever_the_global_rngs_did(self, kata):
        (first, _), (again,) = _worker_runs(kata, "make_reproducible_loader")
        same_order = torch.equal(first[:, 0], again[:, 0])
        for column in (0, *STREAMS):
            what = "sample orders" if column == 0 else f"draws from {STREAMS[column]}"
            why = (
                "the order must come from seed alone"
                if column == 0
                else "the same order but other draws: the workers' seeds, drawn at each epoch from the loader's "
                "generator, must come from seed as well"
                if same_order
                else "they must come from seed alone"
            )
            check(
                torch.equal(first[:, column], again[:, column]),
                f"two runs of {REPRO_LOADER} (the global generators reseeded in between) gave different {what}: "
                f"{show(first[:, column], column)} and {show(again[:, column], column)}; expected the same: {why}",
            )

    def test_shuffles_and_reshuffles_every_epoch(self, kata):
        (first, second), _ = _worker_runs(kata, "make_reproducible_loader")
        order, next_order = first[:, 0].int().tolist(), second[:, 0].int().tolist()
        check(
            sorted(order) == list(range(N_SAMPLES)),
            f"one epoch of {REPRO_LOADER} gave samples {order}; expected each of 0..7 once",
        )
        check(
            order != list(range(N_SAMPLES)), f"{REPRO_LOADER} gave its samples in order {order}; expected them shuffled"
        )
        check(
            order != next_order,
            f"two epochs of {REPRO_LOADER} both gave the order {order}; expected a new order each epoch",
        )

    def test_another_seed_gives_another_order(self, kata):
        order_0, _ = order_without_workers(kata, seed=0)
        order_1, _ = order_without_workers(kata, seed=1)
        check(
            order_0 != order_1,
            f"make_reproducible_loader(AugmentedDataset(8), batch_size=2, seed=0 and then seed=1, num_workers=0) both "
            f"gave the order {order_0}; expected the order to depend on seed",
        )

    def test_no_two_samples_share_an_augmentation(self, kata):
        (first, _), _ = _worker_runs(kata, "make_reproducible_loader")
        for column, stream in STREAMS.items():
            check(
                all_distinct(first[:, column]),
                f"one epoch of {REPRO_LOADER} drew {fmt(first[:, column])} from {stream}; expected 8 different "
                f"numbers{repeats_note(first[:, column])}",
            )

    def test_a_new_epoch_gives_new_augmentations(self, kata):
        (first, second), _ = _worker_runs(kata, "make_reproducible_loader")
        for column, stream in STREAMS.items():
            shared = set(first[:, column].tolist()) & set(second[:, column].tolist())
            check(
                not shared,
                f"two epochs of {REPRO_LOADER} both drew {fmt(torch.tensor(sorted(shared)))} from {stream}; expected "
                "new augmentations each epoch",
            )

    def test_what_the_workers_receive_can_be_pickled_for_spawned_workers(self, kata):
        loader = kata.make_reproducible_loader(kata.AugmentedDataset(N_SAMPLES), BATCH, seed=0)
        loader_checks(loader)
        for name in ("worker_init_fn", "collate_fn", "dataset"):
            try:
                pickle.dumps(getattr(loader, name))
                problem = ""
            except Exception as err:  # pickle raises PicklingError, AttributeError or TypeError
                problem = f"{type(err).__name__}: {err}"
            check(
                not problem,
                f"pickling the {name} of {REPRO_LOADER} failed ({problem}); expected it to pickle: with the 'spawn' "
                "start method (macOS, Windows) every worker receives it pickled, and a lambda or a function defined "
                "inside another one cannot be",
            )
