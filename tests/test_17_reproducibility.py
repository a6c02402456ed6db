"""Tests for kata 17, reproducibility: one class per exercise, in learning order.

Reproducible means equal, so these tests compare with torch.equal and ==, never with a
tolerance (except where a test recovers an augmentation's noise by subtraction, which rounds).
Every test leaves the process as it found it: an autouse fixture saves and restores the global
generators (Python's, NumPy's, torch's, CUDA's) and the deterministic-algorithm and cuDNN
settings, so a wrong answer that leaves something switched on cannot break a later test.

The operations that PyTorch refuses to run deterministically on the CPU (on torch 2.11 to 2.14)
are `Tensor.put_` without accumulation and max-unpooling; the `cuda` tests add `torch.histc` on a
GPU (deterministic on the CPU). The checkpoint tests train a tiny model with dropout (torch's
generator, CUDA's on a GPU), a loader that shuffles with its own generator, and an augmentation
that draws from NumPy's global generator and Python's random module, so that each missing state
shows in the weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dojo.testing import CPU, GPU_ONLY, check, describe, exercise, expect_raises

on_gpu = pytest.mark.parametrize("device", GPU_ONLY, indirect=True)
on_cpu_and_gpu = pytest.mark.parametrize("device", [CPU, *GPU_ONLY], indirect=True)
cudnn = torch.backends.cudnn


def settings() -> tuple[bool, bool, bool, bool]:
    """(deterministic algorithms, warn only, cuDNN deterministic, cuDNN benchmark)."""
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        bool(cudnn.deterministic),
        bool(cudnn.benchmark),
    )


def apply_settings(state: tuple[bool, bool, bool, bool]) -> None:
    enabled, warn_only, deterministic, benchmark = state
    if settings()[:2] != (enabled, warn_only):  # its first call imports torch._inductor: a second here
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    cudnn.deterministic = deterministic
    cudnn.benchmark = benchmark


def show_settings(state) -> str:
    enabled, warn_only, deterministic, benchmark = state
    algorithms = ("on, warning only" if warn_only else "on, raising") if enabled else "off"
    return f"deterministic algorithms {algorithms}; cuDNN deterministic={deterministic}, benchmark={benchmark}"


@pytest.fixture(autouse=True)
def _leave_the_process_as_it_was():
    saved_settings = settings()
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    yield
    apply_settings(saved_settings)
    random.setstate(py)
    np.random.set_state(npy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def seed_all(seed: int) -> None:
    """The test's own seeding (not the kata's): every global generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- seed_everything

#: name -> a function that draws a few numbers from that global source, as a list of floats
SOURCES = {
    "Python's random": lambda: [random.random() for _ in range(3)],
    "NumPy's global generator": lambda: np.random.rand(3).tolist(),
    "torch (CPU)": lambda: torch.rand(3).tolist(),
}
#: name -> a function that moves that source elsewhere (draws, then reseeds it with another seed)
DISTURB = {
    "Python's random": lambda: (random.random(), random.seed(12345)),
    "NumPy's global generator": lambda: (np.random.rand(), np.random.seed(12345)),
    "torch (CPU)": lambda: (torch.rand(1), torch.manual_seed(12345)),
}


@exercise("seed_everything")
class TestSeedEverything:
    @pytest.mark.parametrize("source", list(SOURCES))
    def test_the_same_seed_gives_the_same_numbers(self, kata, source):
        kata.seed_everything(7)
        first = SOURCES[source]()
        DISTURB[source]()
        kata.seed_everything(7)
        again = SOURCES[source]()
        check(
            first == again,
            f"seed_everything(7), draws from {source}: {first}; the source moved on, then seed_everything(7) "
            f"again: {again}; expected the same numbers: {source} must be seeded too (hint 1)",
        )

    @pytest.mark.parametrize("source", list(SOURCES))
    def test_whatever_was_drawn_before(self, kata, source):
        seed_all(1)
        kata.seed_everything(3)
        first = SOURCES[source]()
        seed_all(2)
        for draw in SOURCES.values():
            draw()
        kata.seed_everything(3)
        again = SOURCES[source]()
        check(
            first == again,
            f"seed_everything(3) gave {first} from {source} after one history and {again} after another; "
            "expected the same numbers whatever the generators did before the call",
        )

    @pytest.mark.parametrize("source", list(SOURCES))
    def test_another_seed_gives_other_numbers(self, kata, source):
        kata.seed_everything(7)
        seven = SOURCES[source]()
        kata.seed_everything(8)
        eight = SOURCES[source]()
        check(
            seven != eight,
            f"seed_everything(7) and seed_everything(8) both gave {seven} from {source}; expected other "
            "numbers for another seed (is the seed used?)",
        )

    @pytest.mark.parametrize("seed", [0, 2**32 - 1], ids=["seed 0", "seed 2**32 - 1"])
    def test_every_seed_in_range_works(self, kata, seed):
        kata.seed_everything(seed)
        first = [draw() for draw in SOURCES.values()]
        kata.seed_everything(seed)
        again = [draw() for draw in SOURCES.values()]
        check(first == again, f"seed_everything({seed}) twice gave {first} then {again}; expected the same numbers")

    def test_returns_nothing(self, kata):
        got = kata.seed_everything(7)
        check(got is None, f"seed_everything(7) returned {describe(got)}; expected None: it only seeds")

    @on_gpu
    def test_cuda_generators_too(self, kata, device):
        kata.seed_everything(7)
        first = torch.rand(3, device=device).tolist()
        torch.cuda.manual_seed_all(12345)
        kata.seed_everything(7)
        again = torch.rand(3, device=device).tolist()
        check(
            first == again,
            f"seed_everything(7), torch.rand on {device}: {first}; after reseeding CUDA elsewhere and "
            f"seed_everything(7) again: {again}; expected the same numbers: every CUDA device's generator counts",
        )


# ---------------------------------------------------------------- make_loaders

N_DATA, N_VAL, BATCH = 10, 3, 3
X_DATA = torch.randn(N_DATA, 2, generator=torch.Generator().manual_seed(0))


def pairs() -> TensorDataset:
    """Sample i is (X_DATA[i], i): the label says which sample a batch row is."""
    return TensorDataset(X_DATA.clone(), torch.arange(N_DATA))


def jitter(x: torch.Tensor, generator) -> torch.Tensor:
    return x + torch.randn(x.shape, generator=generator)


def jitter_drawing_more(x: torch.Tensor, generator) -> torch.Tensor:
    """The same augmentation after an edit: it draws three more numbers per sample."""
    torch.rand(3, generator=generator)
    return x + torch.randn(x.shape, generator=generator)


def loaders(kata, split=1, shuffle=2, augment=3, fn=jitter):
    return kata.make_loaders(pairs(), N_VAL, BATCH, split, shuffle, augment, fn)


def call(split=1, shuffle=2, augment=3, fn=jitter) -> str:
    return f"make_loaders(10 samples, n_val=3, batch_size=3, split_seed={split}, shuffle_seed={shuffle}, augment_seed={augment}, {fn.__name__})"


@dataclass
class Epoch:
    labels: list[int]  # sample ids in the order delivered
    noise: torch.Tensor  # (n, 2): delivered x minus the sample's own x, in that order
    sizes: list[int]


def run_epoch(loader) -> Epoch:
    labels, noise, sizes = [], [], []
    for x, y in loader:
        labels += y.tolist()
        noise.append(x - X_DATA[y])
        sizes.append(len(y))
    return Epoch(labels, torch.cat(noise) if noise else torch.empty(0, 2), sizes)


def epochs(loader, n=2, between=None) -> list[Epoch]:
    """n epochs; `between()` runs between them (the caller's own use of the global generator)."""
    out = []
    for i in range(n):
        if i and between:
            between()
        out.append(run_epoch(loader))
    return out


def dropout_draws() -> None:
    torch.rand(50)


def same_noise(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-5, atol=1e-5))


#: (id, keyword changes) that must leave the split as it was
SPLIT_KEEPERS = [
    ("another shuffle seed", {"shuffle": 20}),
    ("another augment seed", {"augment": 30}),
    ("an augmentation that draws more", {"fn": jitter_drawing_more}),
]
#: (id, keyword changes) that must leave the training order as it was
ORDER_KEEPERS = [
    ("another augment seed", {"augment": 30}),
    ("an augmentation that draws more", {"fn": jitter_drawing_more}),
]


@exercise("make_loaders")
class TestMakeLoaders:
    def test_split_sizes_and_every_sample_once(self, kata):
        train, val = loaders(kata)
        t, v = run_epoch(train).labels, run_epoch(val).labels
        check(
            len(v) == N_VAL and len(t) == N_DATA - N_VAL and sorted(t + v) == list(range(N_DATA)),
            f"{call()}: the training loader gave samples {sorted(t)}, the validation loader {sorted(v)}; "
            f"expected {N_VAL} validation samples and the {N_DATA - N_VAL} others for training, each sample once",
        )

    @pytest.mark.parametrize("change", [c for _, c in SPLIT_KEEPERS], ids=[i for i, _ in SPLIT_KEEPERS])
    def test_the_split_depends_on_split_seed_alone(self, kata, change):
        base = sorted(run_epoch(loaders(kata)[1]).labels)
        other = sorted(run_epoch(loaders(kata, **change)[1]).labels)
        check(
            base == other,
            f"{call()} put samples {base} in validation, {call(**change)} put {other} there; expected the same "
            "split: only split_seed decides it (does the split share a generator with something else?)",
        )

    def test_the_split_ignores_the_global_generator(self, kata):
        torch.manual_seed(100)
        base = sorted(run_epoch(loaders(kata)[1]).labels)
        torch.manual_seed(200)
        other = sorted(run_epoch(loaders(kata)[1]).labels)
        check(
            base == other,
            f"{call()} put samples {base} in validation after torch.manual_seed(100), {other} after "
            "torch.manual_seed(200); expected the split to depend on split_seed alone, not on torch's global generator",
        )

    def test_another_split_seed_gives_another_split(self, kata):
        splits = {seed: sorted(run_epoch(loaders(kata, split=seed)[1]).labels) for seed in (1, 2, 3)}
        check(
            len({tuple(s) for s in splits.values()}) > 1,
            f"split_seed 1, 2 and 3 all put samples {splits[1]} in validation; expected the split to follow split_seed",
        )

    def test_validation_samples_are_unchanged_and_in_a_fixed_order(self, kata):
        val = loaders(kata)[1]
        first, second = run_epoch(val), run_epoch(val)
        check(
            bool((first.noise == 0).all()),
            f"{call()}: the validation loader's inputs differ from the data set's: {describe(first.noise)} added; "
            "expected them unchanged (no augmentation for validation)",
        )
        check(
            first.labels == second.labels,
            f"{call()}: two passes over the validation loader gave samples {first.labels} then {second.labels}; "
            "expected the same order on every pass",
        )
        check(first.sizes == [3], f"{call()}: validation batches of sizes {first.sizes}; expected [3]")

    def test_training_batches_are_augmented_and_keep_the_last_one(self, kata):
        first = run_epoch(loaders(kata)[0])
        check(
            first.sizes == [3, 3, 1],
            f"{call()}: training batches of sizes {first.sizes}; expected [3, 3, 1] (batch_size 3, last batch kept)",
        )
        check(
            bool((first.noise != 0).all()),
            f"{call()}: some training inputs came out unchanged ({describe(first.noise)} added); expected every "
            "training input passed through augment",
        )

    def test_the_order_changes_every_epoch(self, kata):
        one, two = epochs(loaders(kata)[0])
        check(
            one.labels != two.labels and sorted(one.labels) == sorted(two.labels),
            f"{call()}: epoch 1 gave samples {one.labels}, epoch 2 {two.labels}; expected the same samples in a new "
            "order (shuffled every epoch)",
        )

    @pytest.mark.parametrize("change", [c for _, c in ORDER_KEEPERS], ids=[i for i, _ in ORDER_KEEPERS])
    def test_the_order_depends_on_shuffle_seed_alone(self, kata, change):
        base = [e.labels for e in epochs(loaders(kata)[0])]
        other = [e.labels for e in epochs(loaders(kata, **change)[0])]
        check(
            base == other,
            f"two epochs of {call()} gave the orders {base}; of {call(**change)}: {other}; expected the same "
            "orders: the augmentation must not draw from the shuffle's generator (hint 1)",
        )

    def test_the_order_ignores_the_global_generator_between_epochs(self, kata):
        base = [e.labels for e in epochs(loaders(kata)[0])]
        other = [e.labels for e in epochs(loaders(kata)[0], between=dropout_draws)]
        check(
            base == other,
            f"two epochs of {call()} gave the orders {base}; with torch's global generator used between the "
            f"epochs (as dropout does): {other}; expected the same orders (the shuffle needs a generator of its own)",
        )

    def test_another_shuffle_seed_gives_another_order(self, kata):
        orders = {s: run_epoch(loaders(kata, shuffle=s)[0]).labels for s in (2, 4, 5)}
        check(
            len({tuple(o) for o in orders.values()}) > 1,
            f"shuffle_seed 2, 4 and 5 all gave the order {orders[2]}; expected the order to follow shuffle_seed",
        )

    @pytest.mark.parametrize(
        "change", [{"shuffle": 20}, {"split": 10}], ids=["another shuffle seed", "another split seed"]
    )
    def test_the_augmentation_depends_on_augment_seed_alone(self, kata, change):
        base = [e.noise for e in epochs(loaders(kata)[0])]
        other = [e.noise for e in epochs(loaders(kata, **change)[0])]
        check(
            all(same_noise(a, b) for a, b in zip(base, other)),
            f"{call()} and {call(**change)}: the k-th training sample of an epoch got other random noise; expected "
            "the same draws in delivery order: only augment_seed decides them (one generator for the augmentation)",
        )

    def test_the_augmentation_ignores_the_global_generator(self, kata):
        torch.manual_seed(100)
        base = [e.noise for e in epochs(loaders(kata)[0])]
        torch.manual_seed(200)
        other = [e.noise for e in epochs(loaders(kata)[0], between=dropout_draws)]
        check(
            all(same_noise(a, b) for a, b in zip(base, other)),
            f"{call()}: the augmentation's noise changed with torch's global generator (seeded otherwise, used "
            "between epochs); expected it to depend on augment_seed alone",
        )

    def test_another_augment_seed_and_another_epoch_give_other_noise(self, kata):
        one, two = epochs(loaders(kata)[0])
        other = run_epoch(loaders(kata, augment=30)[0])
        check(
            not same_noise(one.noise, other.noise),
            f"{call()} and {call(augment=30)} added the same noise; expected the augmentation to follow augment_seed",
        )
        check(
            not same_noise(one.noise, two.noise),
            f"{call()}: epoch 2 added the same noise as epoch 1; expected new draws every epoch",
        )

    def test_building_the_loaders_leaves_the_global_generator(self, kata):
        before = torch.get_rng_state()
        loaders(kata)
        check(
            torch.equal(torch.get_rng_state(), before),
            f"{call()} changed torch's global generator; expected it left as it was (draw from, or reseed, "
            "generators of your own)",
        )


# ---------------------------------------------------------------- deterministic_mode


def put_without_accumulate() -> torch.Tensor:
    """Tensor.put_ without accumulation: no deterministic implementation on any device."""
    return torch.zeros(4).put_(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))


def max_unpool() -> torch.Tensor:
    return F.max_unpool1d(torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[0, 3]]]), 2)


CALLER_SETTINGS = [
    ("PyTorch's defaults", (False, False, False, False)),
    ("deterministic, warnings only", (True, True, False, False)),
    ("deterministic, raising, cuDNN deterministic", (True, False, True, False)),
    ("cuDNN benchmarking on", (False, False, False, True)),
    ("cuDNN deterministic alone", (False, False, True, False)),
]
with_caller_settings = pytest.mark.parametrize(
    "caller", [s for _, s in CALLER_SETTINGS], ids=[i for i, _ in CALLER_SETTINGS]
)


def check_restored(caller, what: str) -> None:
    __tracebackhide__ = True
    now = settings()
    check(
        now == caller,
        f"after {what}: {show_settings(now)}; expected the caller's settings back: {show_settings(caller)}",
    )


@exercise("deterministic_mode")
class TestDeterministicMode:
    def test_inside_deterministic_algorithms_raise(self, kata):
        with kata.deterministic_mode():
            inside = settings()
            with expect_raises(RuntimeError, "deterministic", "Tensor.put_ inside deterministic_mode()"):
                put_without_accumulate()
        check(
            inside[:2] == (True, False),
            f"inside deterministic_mode(): {show_settings(inside)}; expected deterministic algorithms on, raising",
        )

    def test_inside_even_when_the_caller_only_warned(self, kata):
        apply_settings((True, True, False, False))
        with kata.deterministic_mode():
            inside = settings()
            with expect_raises(RuntimeError, "deterministic", "max_unpool1d inside deterministic_mode()"):
                max_unpool()
        check(
            inside[:2] == (True, False),
            f"inside deterministic_mode() with the caller in warnings-only mode: {show_settings(inside)}; expected "
            "deterministic algorithms that raise, not warn",
        )

    @with_caller_settings
    def test_inside_cudnn_is_deterministic_and_does_not_benchmark(self, kata, caller):
        apply_settings(caller)
        with kata.deterministic_mode():
            inside = settings()
        check(
            inside[2:] == (True, False),
            f"inside deterministic_mode() (caller: {show_settings(caller)}): {show_settings(inside)}; expected "
            "cuDNN deterministic=True and benchmark=False (hint 2)",
        )

    @with_caller_settings
    def test_the_callers_settings_come_back(self, kata, caller):
        apply_settings(caller)
        with kata.deterministic_mode():
            pass
        check_restored(caller, "a with deterministic_mode() block")

    @with_caller_settings
    def test_the_callers_settings_come_back_after_an_exception(self, kata, caller):
        apply_settings(caller)
        with expect_raises(ValueError, "from the block", "a with deterministic_mode() block raising ValueError"):
            with kata.deterministic_mode():
                raise ValueError("from the block")
        check_restored(caller, "a with deterministic_mode() block that raised ValueError")

    def test_a_nested_mode_leaves_the_outer_one_in_force(self, kata):
        with kata.deterministic_mode():
            with kata.deterministic_mode():
                pass
            inside = settings()
        check(
            inside == (True, False, True, False),
            f"inside deterministic_mode(), after a nested deterministic_mode() ended: {show_settings(inside)}; "
            "expected the outer mode still in force",
        )
        check_restored((False, False, False, False), "the outer deterministic_mode() block")

    @on_gpu
    def test_gpu_convolutions_repeat_bit_for_bit(self, kata, device):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(4, 3, 16, 16, generator=g).to(device)
        w = torch.randn(8, 3, 3, 3, generator=g).to(device)
        results = []
        with kata.deterministic_mode():
            for _ in range(2):
                xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
                out = F.conv2d(xs, ws, padding=1)
                out.square().sum().backward()
                results.append((out.detach(), xs.grad, ws.grad))
        same = all(torch.equal(a, b) for a, b in zip(*results))
        check(same, f"two identical convolutions (forward and backward) on {device} inside deterministic_mode() differ")


# ---------------------------------------------------------------- nondeterministic_ops


def adds() -> torch.Tensor:
    return torch.ones(3) + 1


def index_add() -> torch.Tensor:
    return torch.zeros(4).index_add_(0, torch.tensor([0, 0, 2]), torch.ones(3))


def bad_matmul() -> torch.Tensor:
    return torch.ones(2, 3) @ torch.ones(2, 3)


def value_error() -> None:
    raise ValueError("a bug of the caller's")


OPS = {"add": adds, "put_": put_without_accumulate, "index_add_": index_add, "max_unpool1d": max_unpool}


@exercise("nondeterministic_ops")
class TestNondeterministicOps:
    def test_names_the_ops_without_a_deterministic_implementation(self, kata):
        got = kata.nondeterministic_ops(dict(OPS))
        check(
            got == ["put_", "max_unpool1d"],
            f"nondeterministic_ops({list(OPS)}) returned {describe(got)}; expected ['put_', 'max_unpool1d'] "
            "(the list, in the dict's order)",
        )

    def test_deterministic_ops_give_an_empty_list(self, kata):
        ops = {"add": adds, "index_add_": index_add}
        got = kata.nondeterministic_ops(ops)
        check(got == [], f"nondeterministic_ops({list(ops)}) returned {describe(got)}; expected []")
        got = kata.nondeterministic_ops({})
        check(got == [], f"nondeterministic_ops({{}}) returned {describe(got)}; expected []")

    def test_each_op_runs_once_in_order_in_deterministic_mode(self, kata):
        log = []

        def recorder(name, op):
            def run():
                log.append((name, torch.are_deterministic_algorithms_enabled()))
                return op()

            return run

        kata.nondeterministic_ops({name: recorder(name, op) for name, op in OPS.items()})
        expected = [(name, True) for name in OPS]
        check(
            log == expected,
            f"nondeterministic_ops({list(OPS)}) called (name, deterministic algorithms on?) {log}; "
            f"expected {expected}: each op once, in order, with deterministic algorithms on",
        )

    @pytest.mark.parametrize(
        "bug, error, match",
        [(bad_matmul, RuntimeError, "cannot be multiplied"), (value_error, ValueError, "caller's")],
        ids=["a shape error (RuntimeError)", "a ValueError"],
    )
    def test_any_other_error_propagates(self, kata, bug, error, match):
        ops = {"put_": put_without_accumulate, bug.__name__: bug, "add": adds}
        with expect_raises(error, match, f"nondeterministic_ops({list(ops)}) with {bug.__name__} failing"):
            kata.nondeterministic_ops(ops)

    @with_caller_settings
    def test_the_callers_settings_come_back(self, kata, caller):
        apply_settings(caller)
        got = kata.nondeterministic_ops(dict(OPS))
        check_restored(caller, "nondeterministic_ops(...)")
        check(
            got == ["put_", "max_unpool1d"],
            f"nondeterministic_ops({list(OPS)}) with the caller's {show_settings(caller)} returned {describe(got)}; "
            "expected ['put_', 'max_unpool1d'] whatever the caller's settings",
        )

    def test_the_callers_settings_come_back_after_an_error(self, kata):
        caller = (True, True, False, True)
        apply_settings(caller)
        with pytest.raises(RuntimeError, match="cannot be multiplied"):
            kata.nondeterministic_ops({"put_": put_without_accumulate, "bad_matmul": bad_matmul})
        check_restored(caller, "nondeterministic_ops(...) that raised the shape error")

    @on_gpu
    def test_an_op_that_is_nondeterministic_on_the_gpu_only(self, kata, device):
        ops = {
            "histc on cpu": lambda: torch.histc(torch.rand(100), bins=4),
            "histc on cuda": lambda: torch.histc(torch.rand(100, device=device), bins=4),
        }
        got = kata.nondeterministic_ops(ops)
        check(
            got == ["histc on cuda"],
            f"nondeterministic_ops({list(ops)}) returned {describe(got)}; expected ['histc on cuda']",
        )


# ---------------------------------------------------------------- save_checkpoint and load_checkpoint

CKPT_X = torch.randn(12, 3, generator=torch.Generator().manual_seed(5))
CKPT_Y = CKPT_X.sum(1, keepdim=True).sin()


@dataclass
class Run:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loader: DataLoader
    device: torch.device

    def objects(self):
        return self.model, self.optimizer, self.scheduler, self.loader


def halving(epoch: int) -> float:
    return 0.5**epoch


def build_run(device, seed: int) -> Run:
    """A run's objects, built the same way every time; `seed` sets the initial weights and the loader's seed."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    # A closed-form schedule (of the scheduler's epoch count): a scheduler left fresh shows in the rate.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, halving)
    loader = DataLoader(
        TensorDataset(CKPT_X, CKPT_Y), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    return Run(model, optimizer, scheduler, loader, torch.device(device))


def train_epoch(run: Run) -> list[int]:
    """One epoch: dropout, NumPy and Python augmentation, Adam, a scheduler step; returns the batch order."""
    run.model.train()
    order = []
    for x, y in run.loader:
        order += [int(i) for i in (x[:, 0] * 1000).round()]
        x = x + torch.from_numpy(np.random.normal(0.0, 0.1, size=tuple(x.shape))).float()
        x = x * (1.0 + 0.1 * random.random())
        x, y = x.to(run.device), y.to(run.device)
        run.optimizer.zero_grad()
        F.mse_loss(run.model(x), y).backward()
        run.optimizer.step()
    run.scheduler.step()
    return order


def draws(device) -> dict[str, list[float]]:
    """The next numbers of every global generator (called at the same point of both runs)."""
    out = {
        "Python's random": [random.random()],
        "NumPy's global generator": np.random.rand(2).tolist(),
        "torch's CPU generator": torch.rand(2).tolist(),
    }
    if torch.device(device).type == "cuda":
        out["CUDA's generator"] = torch.rand(2, device=device).tolist()
    return out


@dataclass
class Outcome:
    run: Run
    order: list[int]  # the batch order of epoch 2
    next_order: list[int]  # of epoch 3
    draws: dict[str, list[float]]  # every global generator's next numbers after epoch 2
    returned: object = None  # what load_checkpoint returned


def uninterrupted(device) -> Outcome:
    seed_all(1)
    run = build_run(device, seed=1)
    train_epoch(run)
    order = train_epoch(run)
    after = draws(device)
    return Outcome(run, order, train_epoch(run), after)


def scramble(device) -> None:
    seed_all(99)
    if torch.device(device).type == "cuda":
        torch.cuda.manual_seed_all(99)


def resumed(kata, device, path, *, fresh_seed=7) -> Outcome:
    """One epoch, save, fresh objects and generators, load, one more epoch."""
    seed_all(1)
    run = build_run(device, seed=1)
    train_epoch(run)
    kata.save_checkpoint(path, *run.objects(), 1)
    scramble(device)
    fresh = build_run(device, seed=fresh_seed)
    scramble(device)
    returned = kata.load_checkpoint(path, *fresh.objects())
    order = train_epoch(fresh)
    after = draws(device)
    return Outcome(fresh, order, train_epoch(fresh), after, returned)


SAVE = "one epoch, save_checkpoint(path, model, optimizer, scheduler, loader, 1), fresh objects, load_checkpoint"


def differing_params(a: nn.Module, b: nn.Module) -> list[str]:
    pb = dict(b.named_parameters())
    return [name for name, p in a.named_parameters() if not torch.equal(p.detach(), pb[name].detach())]


def check_same_weights(want: Outcome, got: Outcome, what: str) -> None:
    __tracebackhide__ = True
    bad = differing_params(want.run.model, got.run.model)
    check(
        not bad,
        f"{what}: the parameters {bad} differ from the uninterrupted run's (torch.equal); expected bit-identical "
        "weights: something the second epoch depends on was not restored (hint 1)",
    )


def optimizer_state_mismatch(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> str:
    sa, sb = a.state_dict(), b.state_dict()
    if len(sa["state"]) != len(sb["state"]):
        return f"state for {len(sb['state'])} parameters, expected {len(sa['state'])}"
    for key, st in sa["state"].items():
        for name, value in st.items():
            other = sb["state"].get(key, {}).get(name)
            same = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
            if not same:
                return f"parameter {key}'s {name!r} is {describe(other)}, expected {describe(value)}"
    lrs_a = [g["lr"] for g in sa["param_groups"]]
    lrs_b = [g["lr"] for g in sb["param_groups"]]
    return "" if lrs_a == lrs_b else f"learning rates {lrs_b}, expected {lrs_a}"


def generator_states(loader) -> dict[str, object]:
    """Every generator's state, as plain comparable values."""
    npy = np.random.get_state()
    return {
        "Python's random": random.getstate(),
        "NumPy's global generator": (npy[1].tolist(), *npy[2:]),
        "torch's CPU generator": torch.get_rng_state().tolist(),
        "the loader's generator": loader.generator.get_state().tolist(),
    }


@exercise("save_checkpoint")
class TestSaveCheckpoint:
    def test_the_file_loads_with_weights_only(self, kata, tmp_path):
        run = build_run("cpu", seed=1)
        train_epoch(run)
        path = tmp_path / "ckpt.pt"
        kata.save_checkpoint(path, *run.objects(), 1)
        try:
            torch.load(path, weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure to load is the learner's to see
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            check(
                False,
                f"save_checkpoint wrote a file that torch.load(path, weights_only=True) refuses: "
                f"{type(err).__name__}: {first}; expected only tensors, numbers, strings and containers of them "
                "(convert NumPy arrays: hint 2)",
            )

    def test_the_file_has_the_stated_format(self, kata, tmp_path):
        # load_checkpoint is written against this format: a file in another one resumes nothing.
        run = build_run("cpu", seed=1)
        train_epoch(run)
        path = tmp_path / "ckpt.pt"
        kata.save_checkpoint(path, *run.objects(), 1)
        state = torch.load(path, weights_only=False)
        called = "save_checkpoint(path, model, optimizer, scheduler, loader, 1)"
        check(isinstance(state, dict), f"{called} wrote {describe(state)}; expected one dict")
        want = {"model", "optimizer", "scheduler", "epoch", "rng"}
        check(set(state) == want, f"{called} wrote the keys {sorted(state)}; expected {sorted(want)}")
        check(type(state["epoch"]) is int and state["epoch"] == 1, f"{called}: 'epoch' is {describe(state['epoch'])}")
        rng = state["rng"]
        want_rng = {"python", "numpy", "torch", "cuda", "loader"}
        check(
            isinstance(rng, dict) and set(rng) == want_rng,
            f"{called}: 'rng' is {describe(rng) if not isinstance(rng, dict) else sorted(rng)}; expected a dict "
            f"with the keys {sorted(want_rng)}",
        )
        npy = rng["numpy"]
        check(
            isinstance(npy, dict)
            and set(npy) == {"keys", "pos", "has_gauss", "cached"}
            and isinstance(npy["keys"], (list, torch.Tensor))
            and len(npy["keys"]) == 624,
            f"{called}: rng['numpy'] is {describe(npy) if not isinstance(npy, dict) else sorted(npy)}; expected "
            "{'keys': 624 ints (a list or a tensor), 'pos': int, 'has_gauss': int, 'cached': float}",
        )
        check(
            torch.equal(rng["loader"], run.loader.generator.get_state()),
            f"{called}: rng['loader'] is not the state of the loader's generator",
        )

    def test_saving_changes_nothing_in_the_run(self, kata, tmp_path):
        seed_all(1)
        run = build_run("cpu", seed=1)
        train_epoch(run)
        params = [p.detach().clone() for p in run.model.parameters()]
        before = generator_states(run.loader)
        lr, last_epoch = run.scheduler.get_last_lr(), run.scheduler.last_epoch
        kata.save_checkpoint(tmp_path / "ckpt.pt", *run.objects(), 1)
        after = generator_states(run.loader)
        for name, state in before.items():
            check(
                after[name] == state,
                f"save_checkpoint changed {name}; expected saving to draw from no generator and reseed none",
            )
        check(
            all(torch.equal(p, q) for p, q in zip(params, run.model.parameters())),
            "save_checkpoint changed the model's parameters; expected them left as they were",
        )
        check(
            (run.scheduler.get_last_lr(), run.scheduler.last_epoch) == (lr, last_epoch),
            "save_checkpoint changed the scheduler; expected it left as it was",
        )


@exercise("load_checkpoint")
class TestLoadCheckpoint:
    @on_cpu_and_gpu
    def test_the_resumed_run_has_the_uninterrupted_runs_weights(self, kata, device, tmp_path):
        want, got = uninterrupted(device), resumed(kata, device, tmp_path / "ckpt.pt")
        check_same_weights(want, got, f"{SAVE}, one more epoch on {device.type}")

    def test_it_returns_the_epochs_completed(self, kata, tmp_path):
        got = resumed(kata, "cpu", tmp_path / "ckpt.pt")
        check(
            type(got.returned) is int and got.returned == 1,
            f"{SAVE}: load_checkpoint returned {describe(got.returned)}; expected the int 1 (the epochs completed)",
        )

    def test_the_optimizer_state_and_learning_rate_match(self, kata, tmp_path):
        want, got = uninterrupted("cpu"), resumed(kata, "cpu", tmp_path / "ckpt.pt")
        bad = optimizer_state_mismatch(want.run.optimizer, got.run.optimizer)
        check(not bad, f"{SAVE}, one more epoch: the optimizer has {bad} (hint 2)")
        check(
            got.run.scheduler.get_last_lr() == want.run.scheduler.get_last_lr(),
            f"{SAVE}, one more epoch: the scheduler's learning rate is {got.run.scheduler.get_last_lr()}; expected "
            f"{want.run.scheduler.get_last_lr()} as in the uninterrupted run (the schedule belongs in the checkpoint)",
        )

    def test_the_loader_continues_its_sequence_of_orders(self, kata, tmp_path):
        want, got = uninterrupted("cpu"), resumed(kata, "cpu", tmp_path / "ckpt.pt")
        check(
            (got.order, got.next_order) == (want.order, want.next_order),
            f"{SAVE}: epochs 2 and 3 visited the samples (ids) {got.order} and {got.next_order}; the uninterrupted "
            f"run {want.order} and {want.next_order}; expected the same orders (the loader's generator: its state, "
            "not its seed)",
        )

    @on_cpu_and_gpu
    def test_every_global_generator_continues_its_stream(self, kata, device, tmp_path):
        want, got = uninterrupted(device), resumed(kata, device, tmp_path / "ckpt.pt")
        for name, numbers in want.draws.items():
            check(
                got.draws[name] == numbers,
                f"{SAVE}, one more epoch on {device.type}: {name} then gave {got.draws[name]}; the uninterrupted run's "
                f"gave {numbers}; expected the same: its state must be saved and restored (hint 2)",
            )

    def test_it_does_not_matter_what_the_fresh_objects_were_seeded_with(self, kata, tmp_path):
        a = resumed(kata, "cpu", tmp_path / "a.pt", fresh_seed=7)
        b = resumed(kata, "cpu", tmp_path / "b.pt", fresh_seed=123)
        check_same_weights(a, b, f"{SAVE} into objects built with seed 123 instead of 7")

    def test_the_model_stays_on_its_device(self, kata, tmp_path):
        got = resumed(kata, "cpu", tmp_path / "ckpt.pt")
        devices = {p.device.type for p in got.run.model.parameters()}
        check(devices == {"cpu"}, f"{SAVE}: the model's parameters are on {devices}; expected cpu")

    @on_gpu
    def test_a_gpu_model_stays_on_the_gpu(self, kata, device, tmp_path):
        got = resumed(kata, device, tmp_path / "ckpt.pt")
        devices = {p.device.type for p in got.run.model.parameters()}
        check(devices == {"cuda"}, f"{SAVE} on cuda: the model's parameters are on {devices}; expected cuda")

    def test_a_checkpoint_of_an_untrained_run_resumes_too(self, kata, tmp_path):
        seed_all(4)
        run = build_run("cpu", seed=4)
        path = tmp_path / "ckpt.pt"
        kata.save_checkpoint(path, *run.objects(), 0)
        first = train_epoch(run)
        scramble("cpu")
        fresh = build_run("cpu", seed=8)
        returned = kata.load_checkpoint(path, *fresh.objects())
        again = train_epoch(fresh)
        check(
            returned == 0,
            f"load_checkpoint of a checkpoint saved with epoch 0 returned {describe(returned)}; expected 0",
        )
        check(
            first == again and not differing_params(run.model, fresh.model),
            "a checkpoint saved before any training (epoch 0, an optimizer without state yet), loaded into fresh "
            "objects: the next epoch differs from the one the saved run trained; expected it identical",
        )
