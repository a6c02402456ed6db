"""Tests for kata 15, schedules and clipping: one class per exercise, in learning order.

Everything runs on the CPU: none of these traps needs a GPU. The references are independent of
the code under test: the schedule is written out as its formula in Python floats; the training
runs the tests compare with are loops written here, over deep copies of the same model; norms and
clipped gradients are computed in float64. The learning rate each optimizer step really used is
read by a hook the optimizer calls just before every step, and PyTorch's warning about calling
the scheduler before the optimizer is recorded and turned into a failure.
"""

from __future__ import annotations

import copy
import math
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from dojo.testing import check, check_tensor, describe, exercise, expect_raises, value_mismatch


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def call_kata(fn, call, *args, **kwargs):
    """fn(*args); an error raised inside it becomes a message naming the call."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise  # an unfilled stub: the plugin reports it as not done yet
    except Exception as err:  # noqa: BLE001 - any error of the learner's code is reported the same way
        check(False, f"{call} raised {type(err).__name__}: {first_line(err)!r}")


def mlp(seed: int = 0, bias: bool = True) -> nn.Sequential:
    """A float32 MLP 3 -> 4 -> 2."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4, bias=bias), nn.Tanh(), nn.Linear(4, 2, bias=bias))


def make_batches(n: int, seed: int = 1, rows: int = 4, out: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(rows, 3, generator=g), torch.randn(rows, out, generator=g)) for _ in range(n)]


BASE_LRS = (0.1, 0.03)  # two param groups with different base learning rates


def two_groups(model: nn.Module, momentum: float = 0.9) -> torch.optim.SGD:
    """SGD with momentum; the first layer in a group of lr 0.1, the rest in a group of lr 0.03."""
    first, rest = list(model[0].parameters()), [p for m in list(model)[1:] for p in m.parameters()]
    return torch.optim.SGD(
        [{"params": first, "lr": BASE_LRS[0]}, {"params": rest, "lr": BASE_LRS[1]}], momentum=momentum
    )


def lrs_of(optimizer: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in optimizer.param_groups]


class StepLrs:
    """Records the learning rates of every param group just before each optimizer step."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.seen: list[list[float]] = []
        self.handle = optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.seen.append(lrs_of(opt)))

    def close(self) -> None:
        self.handle.remove()


def fmt(values) -> str:
    if isinstance(values, float):
        return f"{values:.6g}"
    return "[" + ", ".join(fmt(v) for v in values) + "]"


def close_lrs(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12) for a, b in zip(got, want))


def reference_lr(s: int, base: float, warmup: int, total: int, ratio: float) -> float:
    """The schedule of warmup_cosine's docstring, written out case by case."""
    floor = ratio * base
    if s < warmup:
        return base * (s + 1) / (warmup + 1)
    if s >= total:
        return floor
    return floor + (base - floor) * (1 + math.cos(math.pi * (s - warmup) / (total - warmup))) / 2


def reference_scheduler(optimizer, warmup=2, total=8, ratio=0.1) -> LambdaLR:
    """The tests' own warm-up and cosine scheduler (for the exercises that only use one)."""
    return LambdaLR(optimizer, lambda s: reference_lr(s, 1.0, warmup, total, ratio))


def sgd_steps(model, optimizer, scheduler, batches) -> StepLrs:
    """The right loop, written here: one step per batch, the scheduler advanced after each step."""
    rec = StepLrs(optimizer)
    for x, y in batches:
        optimizer.zero_grad()
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    rec.close()
    return rec


def check_same_weights(got: nn.Module, want: nn.Module, what: str, why: str) -> None:
    __tracebackhide__ = True
    for (name, p), q in zip(got.named_parameters(), want.parameters()):
        mismatch = value_mismatch(p.detach(), q.detach(), rtol=1e-5, atol=1e-7)
        check(
            not mismatch,
            f"{what}, {name} is {describe(p.detach())}; expected {describe(q.detach())} ({why})\n({mismatch})",
        )


# ---------------------------------------------------------------- warmup_cosine

# (id, warmup_steps, total_steps, final_ratio)
SCHEDULES = [
    ("W=3 T=10 final 0.1", 3, 10, 0.1),
    ("W=0 T=6 final 0 (no warm-up)", 0, 6, 0.0),
    ("W=4 T=5 (a one-step cosine)", 4, 5, 0.2),
    ("W=1 T=8 final 0.25", 1, 8, 0.25),
    ("W=5 T=20 final 0", 5, 20, 0.0),
]


def fresh_optimizer(seed: int = 0) -> tuple[nn.Sequential, torch.optim.SGD]:
    model = mlp(seed)
    return model, two_groups(model)


def advance(optimizer, scheduler) -> None:
    """One training step without gradients: the optimizer's step (which moves nothing), then the scheduler's."""
    optimizer.step()
    scheduler.step()


def where_in_schedule(s: int, warmup: int, total: int) -> str:
    if s < warmup:
        return "in the warm-up"
    if s == warmup:
        return "the first step after the warm-up, which runs at the base rate"
    if s == total - 1:
        return "the last step, still a little above the floor"
    if s >= total:
        return "after the last step, where the rate stays at the floor"
    return "in the cosine decay"


def symptom(got: float, s: int, base: float, warmup: int, total: int, ratio: float) -> str:
    """A guess at the mistake behind a wrong learning rate, for the message."""
    if s == 0 and got == 0.0:
        return " (a first step with learning rate 0 is a wasted step: the warm-up's first rate is b / (W + 1); hint 1)"
    if math.isclose(got, reference_lr(s + 1, base, warmup, total, ratio), rel_tol=1e-6):
        return " (that is the rate of the step after it: an off-by-one)"
    if s > 0 and math.isclose(got, reference_lr(s - 1, base, warmup, total, ratio), rel_tol=1e-6):
        return " (that is the rate of the step before it: an off-by-one)"
    if s >= total and got > ratio * base * (1 + 1e-6):
        return " (the cosine came back up after its end: clamp its progress at 1; hint 2)"
    return " (hint 1: check f(0), f(W - 1), f(W), f(T - 1) and f(T) by hand)"


def call_warmup_cosine(kata, optimizer, warmup, total, ratio):
    __tracebackhide__ = True
    call = f"warmup_cosine(optimizer, warmup_steps={warmup}, total_steps={total}, final_ratio={ratio})"
    sched = call_kata(kata.warmup_cosine, call, optimizer, warmup, total, ratio)
    check(
        isinstance(sched, LRScheduler),
        f"{call} returned {describe(sched)}; expected one of PyTorch's learning-rate schedulers "
        "(an instance of torch.optim.lr_scheduler.LRScheduler), which a training loop advances with .step(); hint 2",
    )
    return sched, call


@exercise("warmup_cosine")
class TestWarmupCosine:
    @pytest.mark.parametrize("case", SCHEDULES, ids=[c[0] for c in SCHEDULES])
    def test_the_learning_rate_of_every_step_follows_the_formula(self, kata, case):
        _, warmup, total, ratio = case
        _, opt = fresh_optimizer()
        sched, call = call_warmup_cosine(kata, opt, warmup, total, ratio)
        for s in range(total + 4):
            got = lrs_of(opt)
            want = [reference_lr(s, b, warmup, total, ratio) for b in BASE_LRS]
            if not close_lrs(got, want):
                i = next(
                    i for i, (a, b) in enumerate(zip(got, want)) if not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
                )
                check(
                    False,
                    f"with {call} over param groups of base rates {list(BASE_LRS)}, step {s} "
                    f"({where_in_schedule(s, warmup, total)}) runs at {fmt(got)}; expected {fmt(want)}"
                    + symptom(got[i], s, BASE_LRS[i], warmup, total, ratio),
                )
            advance(opt, sched)

    def test_the_rates_of_step_0_are_set_at_creation(self, kata):
        _, opt = fresh_optimizer()
        _, call = call_warmup_cosine(kata, opt, 4, 10, 0.0)
        want = [b / 5 for b in BASE_LRS]
        check(
            close_lrs(lrs_of(opt), want),
            f"right after {call}, the optimizer's learning rates are {fmt(lrs_of(opt))}; expected step 0's, "
            f"{fmt(want)}: the first step runs before the scheduler has been advanced at all",
        )

    def test_each_group_follows_its_own_base_rate_and_floor(self, kata):
        model = mlp()
        opt = torch.optim.SGD(
            [{"params": model[0].parameters(), "lr": 0.6}, {"params": model[2].parameters(), "lr": 0.02}]
        )
        sched, call = call_warmup_cosine(kata, opt, 2, 6, 0.5)
        for s in range(9):
            want = [reference_lr(s, b, 2, 6, 0.5) for b in (0.6, 0.02)]
            check(
                close_lrs(lrs_of(opt), want),
                f"with {call} over param groups of base rates [0.6, 0.02], step {s} runs at {fmt(lrs_of(opt))}; "
                f"expected {fmt(want)}: each group scales its own base rate, and its floor is final_ratio times its "
                "own base rate (floors [0.3, 0.01])",
            )
            advance(opt, sched)

    @pytest.mark.parametrize("warmup, total", [(-1, 5), (5, 5), (6, 5)], ids=["negative warm-up", "T = W", "T < W"])
    def test_impossible_lengths_raise_value_error(self, kata, warmup, total):
        _, opt = fresh_optimizer()
        call = f"warmup_cosine(optimizer, warmup_steps={warmup}, total_steps={total})"
        with expect_raises(ValueError, None, call):
            kata.warmup_cosine(opt, warmup, total)

    def test_its_state_restores_its_place_in_the_schedule(self, kata):
        _, opt = fresh_optimizer()
        sched, call = call_warmup_cosine(kata, opt, 3, 10, 0.1)
        for _ in range(5):
            advance(opt, sched)
        state = sched.state_dict()
        _, opt2 = fresh_optimizer(seed=1)
        sched2, _ = call_warmup_cosine(kata, opt2, 3, 10, 0.1)
        sched2.load_state_dict(state)
        advance(opt2, sched2)
        want = [reference_lr(6, b, 3, 10, 0.1) for b in BASE_LRS]
        check(
            close_lrs(lrs_of(opt2), want),
            f"a scheduler from {call} advanced 5 times, its state_dict() loaded into a second one (over a fresh "
            f"optimizer) that is then advanced once, sets {fmt(lrs_of(opt2))}; expected step 6's rates {fmt(want)}: "
            "the scheduler's state must say where it is in the schedule",
        )


# ---------------------------------------------------------------- train_scheduled


def halving(optimizer) -> LambdaLR:
    """A schedule whose every step differs: step k runs at base * 0.5**k."""
    return LambdaLR(optimizer, lambda k: 0.5**k)


class ScheduledRun:
    """A fresh model, optimizer (two groups, momentum) and scheduler; a reference trained alongside."""

    def __init__(self, interval: str, epochs: int, n_batches: int):
        self.interval, self.epochs = interval, epochs
        self.model = mlp()
        self.batches = make_batches(n_batches)
        self.steps = epochs * n_batches
        self.ref_model = copy.deepcopy(self.model)
        ref_opt = two_groups(self.ref_model)
        ref_sched = halving(ref_opt)
        self.ref_losses = []
        for _ in range(epochs):
            for x, y in self.batches:
                ref_opt.zero_grad()
                loss = F.mse_loss(self.ref_model(x), y)
                loss.backward()
                ref_opt.step()
                if interval == "step":
                    ref_sched.step()
                self.ref_losses.append(loss.item())
            if interval == "epoch":
                ref_sched.step()
        per = 1 if interval == "step" else n_batches
        self.want_lrs = [[b * 0.5 ** (k // per) for b in BASE_LRS] for k in range(self.steps)]
        self.want_after = [b * 0.5 ** (epochs if interval == "epoch" else self.steps) for b in BASE_LRS]
        self.optimizer = two_groups(self.model)
        self.scheduler = halving(self.optimizer)
        self.call = (
            f"train_scheduled(model, {n_batches} batches, mse, sgd with 2 groups, scheduler, epochs={epochs}, "
            f"interval={interval!r})"
        )

    def run(self, kata):
        rec = StepLrs(self.optimizer)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                got = call_kata(
                    kata.train_scheduled,
                    self.call,
                    self.model,
                    self.batches,
                    F.mse_loss,
                    self.optimizer,
                    self.scheduler,
                    self.epochs,
                    interval=self.interval,
                )
            finally:
                rec.close()
        self.warnings = [str(w.message) for w in caught]
        self.seen = rec.seen
        return got


RUNS = [
    ("step", 2, 3),
    ("epoch", 3, 2),
    ("step", 1, 1),
    ("epoch", 1, 1),
]
RUN_IDS = [f"{i}, {e} epochs of {n} batches" for i, e, n in RUNS]


@exercise("train_scheduled")
class TestTrainScheduled:
    @pytest.mark.parametrize("case", RUNS, ids=RUN_IDS)
    def test_each_step_runs_at_the_rate_the_schedule_gives_it(self, kata, case):
        run = ScheduledRun(*case)
        run.run(kata)
        check(
            len(run.seen) == run.steps,
            f"{run.call} took {len(run.seen)} optimizer steps; expected {run.steps}, one per batch and epoch",
        )
        for k, (got, want) in enumerate(zip(run.seen, run.want_lrs)):
            if close_lrs(got, want):
                continue
            note = ""
            if (
                k + 1 < len(run.want_lrs)
                and close_lrs(got, run.want_lrs[k + 1])
                or close_lrs(got, [b / 2 for b in want])
            ):
                note = (
                    " (the rate meant for a later step: the scheduler was advanced before the optimizer's step, so the "
                    "schedule's first rate was never used; hint 2)"
                )
            elif run.interval == "epoch":
                note = " (with interval 'epoch', every step of epoch e runs at the schedule's step e; hint 2)"
            check(
                False,
                f"in {run.call}, optimizer step {k} ran with learning rates {fmt(got)}; expected {fmt(want)} (the "
                f"scheduler halves them every {run.interval}){note}",
            )

    @pytest.mark.parametrize("interval", ["step", "epoch"])
    def test_pytorch_does_not_warn_about_the_order(self, kata, interval):
        run = ScheduledRun(interval, 2, 2)
        run.run(kata)
        bad = [w for w in run.warnings if "lr_scheduler.step()" in w]
        check(
            not bad,
            f"{run.call} made PyTorch warn: {bad[0] if bad else ''!r}; expected no warning: optimizer.step() "
            "comes first, the scheduler's step after it (hint 2)",
        )

    @pytest.mark.parametrize("case", RUNS, ids=RUN_IDS)
    def test_afterwards_the_optimizer_holds_the_next_steps_rates(self, kata, case):
        run = ScheduledRun(*case)
        run.run(kata)
        per = "step" if run.interval == "step" else "epoch"
        n = run.steps if per == "step" else run.epochs
        check(
            close_lrs(lrs_of(run.optimizer), run.want_after),
            f"after {run.call}, the optimizer's learning rates are {fmt(lrs_of(run.optimizer))}; expected "
            f"{fmt(run.want_after)}: the scheduler advanced once per {per}, {n} times in all",
        )

    @pytest.mark.parametrize("case", RUNS[:2], ids=RUN_IDS[:2])
    def test_returns_every_steps_loss_as_a_float(self, kata, case):
        run = ScheduledRun(*case)
        got = run.run(kata)
        check(
            isinstance(got, list) and all(type(v) is float for v in got),
            f"{run.call} returned {describe(got)}; expected a list of Python floats, the loss of every step",
        )
        check(
            len(got) == len(run.ref_losses)
            and all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(got, run.ref_losses)),
            f"{run.call} returned the losses {fmt(got)}; expected {fmt(run.ref_losses)} (the loss of each batch, "
            "computed before its step)",
        )

    @pytest.mark.parametrize("case", RUNS[:2], ids=RUN_IDS[:2])
    def test_each_step_uses_its_own_batchs_gradients(self, kata, case):
        run = ScheduledRun(*case)
        for p in run.model.parameters():
            p.grad = torch.full_like(p, 100.0)  # left over from before the call
        run.run(kata)
        check_same_weights(
            run.model,
            run.ref_model,
            f"after {run.call} with 100s left in every .grad",
            "every step uses the gradients of its own batch only: clear them before each backward",
        )

    def test_an_unknown_interval_raises_value_error_before_training(self, kata):
        run = ScheduledRun("step", 1, 2)
        before = [p.detach().clone() for p in run.model.parameters()]
        call = run.call.replace("interval='step'", "interval='batch'")
        with expect_raises(ValueError, None, call):
            kata.train_scheduled(run.model, run.batches, F.mse_loss, run.optimizer, run.scheduler, 1, interval="batch")
        check(
            all(torch.equal(p.detach(), q) for p, q in zip(run.model.parameters(), before)),
            f"{call} changed the model's weights before raising; expected the check to come first",
        )


# ---------------------------------------------------------------- save_checkpoint and load_checkpoint

TOTAL, SAVED_AT = 6, 3  # an uninterrupted run of 6 steps against 3 steps, a checkpoint, and 3 more


class ResumeRun:
    """The uninterrupted run, and the first half of the interrupted one (same batches, same start)."""

    def __init__(self, tmp_path):
        self.batches = make_batches(TOTAL, seed=5)
        self.full = mlp()
        opt = two_groups(self.full)
        self.full_lrs = sgd_steps(self.full, opt, reference_scheduler(opt), self.batches).seen
        self.model = mlp()
        self.optimizer = two_groups(self.model)
        self.scheduler = reference_scheduler(self.optimizer)
        sgd_steps(self.model, self.optimizer, self.scheduler, self.batches[:SAVED_AT])
        self.path = tmp_path / "checkpoint.pt"

    @staticmethod
    def fresh():
        """What a restarted program builds: another initialisation, a new optimizer, a new scheduler."""
        model = mlp(seed=7)
        optimizer = two_groups(model)
        return model, optimizer, reference_scheduler(optimizer)

    def resume(self, model, optimizer, scheduler, what: str) -> None:
        """The last 3 steps, on the resumed objects; then compare with the uninterrupted run."""
        __tracebackhide__ = True
        got = sgd_steps(model, optimizer, scheduler, self.batches[SAVED_AT:]).seen
        want = self.full_lrs[SAVED_AT:]
        restart = got[1:] == [lrs for lrs in self.full_lrs[1 : len(got)]]
        note = " (the schedule started again from its beginning: the scheduler's state is missing)" if restart else ""
        if got and close_lrs(got[0], self.full_lrs[0]):
            note = " (step 0's rates: the fresh objects' own rates were never replaced)"
        check(
            len(got) == len(want) and all(close_lrs(a, b) for a, b in zip(got, want)),
            f"{what}, steps {SAVED_AT} to {TOTAL - 1} ran with learning rates {[fmt(r) for r in got]}; expected "
            f"those of the run that never stopped, {[fmt(r) for r in want]}{note}",
        )
        check_same_weights(
            model,
            self.full,
            f"{what} and 3 more steps",
            "the weights of the run that never stopped: same steps from the same weights, momentum and learning rates",
        )


def safe_load(path, call):
    __tracebackhide__ = True
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        check(
            False,
            f"the file {call} wrote does not open with torch.load(path, weights_only=True): {first_line(err)!r}; "
            "expected only tensors, numbers, strings and plain containers (state dicts, not objects)",
        )
    except FileNotFoundError:
        check(False, f"{call} wrote no file at path")


KEYS = {"model", "optimizer", "scheduler", "step"}


@exercise("save_checkpoint")
class TestSaveCheckpoint:
    CALL = f"save_checkpoint(path, model, optimizer, scheduler, step={SAVED_AT})"

    def _saved(self, kata, tmp_path):
        run = ResumeRun(tmp_path)
        call_kata(kata.save_checkpoint, self.CALL, run.path, run.model, run.optimizer, run.scheduler, SAVED_AT)
        return run, safe_load(run.path, self.CALL)

    def test_the_file_holds_the_four_entries_and_the_step(self, kata, tmp_path):
        _, ckpt = self._saved(kata, tmp_path)
        check(
            isinstance(ckpt, dict) and set(ckpt) == KEYS,
            f"the file {self.CALL} wrote holds {describe(ckpt) if not isinstance(ckpt, dict) else sorted(ckpt)}; "
            f"expected a dict with exactly the entries {sorted(KEYS)}",
        )
        check(
            type(ckpt["step"]) is int and ckpt["step"] == SAVED_AT,
            f"the file {self.CALL} wrote has step {describe(ckpt['step'])}; expected the Python int {SAVED_AT}",
        )

    def test_fresh_objects_loaded_from_it_continue_the_same_run(self, kata, tmp_path):
        run, ckpt = self._saved(kata, tmp_path)
        check(
            isinstance(ckpt, dict) and KEYS <= set(ckpt), f"the file {self.CALL} wrote lacks entries of {sorted(KEYS)}"
        )
        model, optimizer, scheduler = ResumeRun.fresh()
        what = f"after {self.CALL} and loading each entry's state dict into a fresh model, optimizer and scheduler"
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        except Exception as err:  # noqa: BLE001
            check(
                False,
                f"{what}: loading raised {type(err).__name__}: {first_line(err)!r}; expected each entry to be "
                "that object's state dict",
            )
        run.resume(model, optimizer, scheduler, what)

    def test_saving_leaves_the_run_as_it_was(self, kata, tmp_path):
        run, _ = self._saved(kata, tmp_path)
        run.resume(run.model, run.optimizer, run.scheduler, f"after {self.CALL}, on the same objects")

    def test_the_model_entry_holds_its_buffers_too(self, kata, tmp_path):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        model(torch.randn(8, 3))  # the running statistics move away from their initial values
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = reference_scheduler(optimizer)
        call = "save_checkpoint(path, model with a BatchNorm1d, optimizer, scheduler, step=0)"
        path = tmp_path / "with_buffers.pt"
        call_kata(kata.save_checkpoint, call, path, model, optimizer, scheduler, 0)
        ckpt = safe_load(path, call)
        want = model.state_dict()
        got = ckpt.get("model") if isinstance(ckpt, dict) else None
        names = sorted(got) if isinstance(got, dict) else describe(got)
        check(
            isinstance(got, dict) and set(got) == set(want),
            f"the file {call} wrote has 'model' {names}; expected every parameter and buffer by name, "
            f"{sorted(want)} (the running statistics are state too)",
        )
        for name, value in want.items():
            mismatch = value_mismatch(torch.as_tensor(got[name]).double(), value.double(), rtol=0, atol=0)
            check(
                not mismatch,
                f"the file {call} wrote has 'model'[{name!r}] {describe(got[name])}; expected "
                f"{describe(value)}, the model's\n({mismatch})",
            )


class _Payload:
    """Unpickling this calls a function: what an unsafe load of a hostile file would run."""

    def __reduce__(self):
        return (print, ("code from the checkpoint ran",))


@exercise("load_checkpoint")
class TestLoadCheckpoint:
    CALL = "load_checkpoint(path, fresh model, fresh optimizer, fresh scheduler)"

    def _loaded(self, kata, tmp_path, extra=None, call=True, step=SAVED_AT):
        run = ResumeRun(tmp_path)
        ckpt = {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "step": step,
        }
        torch.save({**ckpt, **(extra or {})}, run.path)
        model, optimizer, scheduler = ResumeRun.fresh()
        args = (run.path, model, optimizer, scheduler)
        got = call_kata(kata.load_checkpoint, self.CALL, *args) if call else kata.load_checkpoint(*args)
        return run, got, (model, optimizer, scheduler)

    # A scheduler advanced once per epoch counts epochs, not steps: 3 epochs of 4 batches are 12 steps.
    @pytest.mark.parametrize("step", [SAVED_AT, 12], ids=["scheduler advanced per step", "scheduler per epoch"])
    def test_returns_the_step_as_an_int(self, kata, tmp_path, step):
        _, got, (_, _, scheduler) = self._loaded(kata, tmp_path, step=step)
        note = ""
        if got == scheduler.last_epoch and got != step:
            note = " (the scheduler's own count: it counts epochs when it is advanced once per epoch)"
        check(
            type(got) is int and got == step,
            f"{self.CALL} returned {describe(got)}; expected the Python int {step}, the step the file holds{note}",
        )

    # With step 12, the file's scheduler still sits at step 3: its place comes from its state, not from the step.
    @pytest.mark.parametrize("step", [SAVED_AT, 12], ids=["scheduler advanced per step", "scheduler per epoch"])
    def test_the_resumed_run_continues_with_the_same_rates_and_weights(self, kata, tmp_path, step):
        run, _, (model, optimizer, scheduler) = self._loaded(kata, tmp_path, step=step)
        run.resume(model, optimizer, scheduler, f"after {self.CALL} of a file with step {step}")

    def test_the_model_holds_the_checkpoints_weights(self, kata, tmp_path):
        run, _, (model, _, _) = self._loaded(kata, tmp_path)
        check_same_weights(model, run.model, f"after {self.CALL}", "the weights in the file")

    def test_a_file_holding_an_object_is_refused(self, kata, tmp_path, capsys):
        call = "load_checkpoint(path of a file that also holds a pickled object, model, optimizer, scheduler)"
        with expect_raises(pickle.UnpicklingError, None, call):
            self._loaded(kata, tmp_path, extra={"args": _Payload()}, call=False)
        check(
            "code from the checkpoint ran" not in capsys.readouterr().out,
            f"{call} ran code from the file before refusing it; expected a loader that never unpickles objects",
        )


# ---------------------------------------------------------------- clip_global_norm


def grads_case(seed: int = 2) -> list[torch.Tensor]:
    """Five parameters: four with float32 gradients of different shapes, one (the third) without."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (4,), (2, 2), (1,), (5, 1)]
    params = []
    for i, shape in enumerate(shapes):
        p = torch.randn(shape, generator=g).requires_grad_()
        if i != 2:
            p.grad = torch.randn(shape, generator=g)
        params.append(p)
    return params


def total_norm64(grads) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))


def norm_note(got, params_grads, max_norm) -> str:
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return ""
    v = float(got)
    if math.isclose(v, max_norm, rel_tol=1e-4):
        return " (that is max_norm: the norm after clipping; return the one before)"
    norms = [float(g.double().norm()) for g in params_grads if g is not None]
    if math.isclose(v, sum(norms), rel_tol=1e-4):
        return " (that is the sum of the gradients' norms, not the norm of all of them together)"
    if math.isclose(v, max(norms), rel_tol=1e-4) or math.isclose(v, norms[-1], rel_tol=1e-4):
        return " (that is the norm of one gradient: the total is over all of them, as one vector)"
    if math.isclose(v, sum(n * n for n in norms), rel_tol=1e-4):
        return " (that is the sum of squares: take its square root)"
    return ""


def call_clip(kata, params, max_norm, how="a list"):
    __tracebackhide__ = True
    call = f"clip_global_norm({how} of 5 parameters, one without a gradient, max_norm={max_norm:g})"
    return call_kata(kata.clip_global_norm, call, params, max_norm), call


def check_norm(got, want: float, call: str, note: str = "") -> None:
    __tracebackhide__ = True
    check(
        isinstance(got, torch.Tensor) and got.dim() == 0 and got.dtype == torch.float32,
        f"{call} returned {describe(got)}; expected a 0-dim float32 tensor, the total norm before clipping",
    )
    check(
        not got.requires_grad and got.grad_fn is None,
        f"{call} returned {describe(got)}; expected a tensor that carries no graph",
    )
    check(math.isclose(float(got), want, rel_tol=1e-5), f"{call} returned {describe(got)}; expected {want:.6g}{note}")


MAX_NORM = 1.5  # the gradients of grads_case() have a total norm of about 4.6: clipping is active


@exercise("clip_global_norm")
class TestClipGlobalNorm:
    def test_returns_the_total_norm_before_clipping(self, kata):
        params = grads_case()
        grads = [p.grad.clone() if p.grad is not None else None for p in params]
        got, call = call_clip(kata, params, MAX_NORM)
        check_norm(got, total_norm64(grads), call, norm_note(got, grads, MAX_NORM))

    def test_every_gradient_is_scaled_by_the_same_factor(self, kata):
        params = grads_case()
        grads = [p.grad.clone() if p.grad is not None else None for p in params]
        factor = MAX_NORM / total_norm64(grads)
        _, call = call_clip(kata, params, MAX_NORM)
        after = total_norm64([p.grad for p in params])
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            want = (g.double() * factor).float()
            mismatch = value_mismatch(p.grad, want, rtol=1e-5, atol=1e-7) if p.grad is not None else "it is None"
            note = ""
            if after > MAX_NORM * 1.001:
                note = (
                    f" (the gradients' total norm is now {after:.4g}, above max_norm: each was clipped on its own; "
                    "clip them all by one factor, hint 1)"
                )
            elif p.grad is not None and not value_mismatch(p.grad, g):
                note = " (it is unchanged: were the parameters read twice? a generator is empty the second time)"
            check(
                not mismatch,
                f"after {call}, gradient {i} is {describe(p.grad)}; expected it times max_norm / total norm "
                f"= {factor:.4g}: {describe(want)}{note}\n({mismatch})",
            )

    def test_the_total_norm_afterwards_is_max_norm(self, kata):
        params = grads_case()
        _, call = call_clip(kata, params, MAX_NORM)
        after = total_norm64([p.grad for p in params])
        check(
            math.isclose(after, MAX_NORM, rel_tol=1e-4),
            f"after {call}, the gradients' total norm is {after:.6g}; expected max_norm, {MAX_NORM:g}",
        )

    def test_reads_a_generator_of_parameters_once(self, kata):
        params = grads_case()
        grads = [p.grad.clone() if p.grad is not None else None for p in params]
        got, call = call_clip(kata, (p for p in params), MAX_NORM, how="a generator")
        check_norm(got, total_norm64(grads), call)
        after = total_norm64([p.grad for p in params])
        check(
            math.isclose(after, MAX_NORM, rel_tol=1e-4),
            f"after {call}, the gradients' total norm is {after:.6g}; expected {MAX_NORM:g}: the parameters came "
            "from a generator, which gives nothing the second time it is read (hint 1)",
        )

    @pytest.mark.parametrize("max_norm", [10.0, 1e6], ids=["max_norm 10", "max_norm 1e6"])
    def test_gradients_within_max_norm_are_left_as_they_are(self, kata, max_norm):
        params = grads_case()
        grads = [p.grad.clone() if p.grad is not None else None for p in params]
        got, call = call_clip(kata, params, max_norm)
        check_norm(got, total_norm64(grads), call)
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is not None:
                mismatch = value_mismatch(p.grad, g, rtol=1e-6, atol=0.0)
                check(
                    not mismatch,
                    f"after {call}, gradient {i} is {describe(p.grad)}; expected it unchanged, {describe(g)}: their "
                    f"total norm ({total_norm64(grads):.4g}) is within max_norm, so nothing is scaled (never up)\n"
                    f"({mismatch})",
                )

    def test_a_parameter_without_gradient_keeps_none(self, kata):
        params = grads_case()
        _, call = call_clip(kata, params, MAX_NORM)
        check(
            params[2].grad is None,
            f"after {call}, parameter 2 (which had no gradient) has .grad {describe(params[2].grad)}; expected None",
        )

    def test_the_parameters_values_are_not_touched(self, kata):
        params = grads_case()
        before = [p.detach().clone() for p in params]
        _, call = call_clip(kata, params, MAX_NORM)
        for i, (p, q) in enumerate(zip(params, before)):
            check(torch.equal(p.detach(), q), f"after {call}, parameter {i} changed; expected only gradients to change")

    def test_no_gradient_at_all_gives_zero(self, kata):
        params = [torch.randn(3, requires_grad=True), torch.randn(2, 2, requires_grad=True)]
        call = "clip_global_norm(2 parameters, neither with a gradient, max_norm=1)"
        got = call_kata(kata.clip_global_norm, call, params, 1.0)
        check_norm(got, 0.0, call)
        check(all(p.grad is None for p in params), f"after {call}, a .grad is no longer None")


# ---------------------------------------------------------------- clipped_train_step


class WithUnused(nn.Module):
    """An MLP 3 -> 4 -> 2 and a layer its forward pass never uses (its .grad stays None)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = mlp()
        self.unused = nn.Linear(2, 2)

    def forward(self, x):
        return self.body(x)


STEP_LR = 0.1


class ClipRun:
    def __init__(self, max_norm: float, stale: bool = True):
        self.max_norm = max_norm
        self.model = WithUnused()
        self.x, self.y = make_batches(1, seed=3, rows=5)[0]
        twin = copy.deepcopy(self.model).double()
        loss = F.mse_loss(twin(self.x.double()), self.y.double())
        loss.backward()
        self.ref_loss = float(loss.detach())
        self.grads = [p.grad for p in twin.parameters()]  # None for the unused layer
        self.ref_norm = total_norm64(self.grads)
        factor = min(1.0, max_norm / self.ref_norm)
        self.clipped = [None if g is None else g * factor for g in self.grads]
        self.before = [p.detach().clone() for p in self.model.parameters()]
        self.names = [n for n, _ in self.model.named_parameters()]
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=STEP_LR)
        if stale:
            for p in self.model.parameters():
                p.grad = torch.full_like(p, 100.0)
        self.call = f"clipped_train_step(model, x, y, mse, sgd(lr={STEP_LR}), max_norm={max_norm:g})" + (
            " with 100s left in every .grad" if stale else ""
        )

    def run(self, kata):
        got = call_kata(
            kata.clipped_train_step, self.call, self.model, self.x, self.y, F.mse_loss, self.optimizer, self.max_norm
        )
        check(
            isinstance(got, tuple) and len(got) == 2,
            f"{self.call} returned {describe(got)}; expected the tuple (loss, grad_norm)",
        )
        return got


@exercise("clipped_train_step")
class TestClippedTrainStep:
    MAX_NORM = 0.3  # below the batch's gradient norm (about 1.2): clipping is active

    def test_returns_the_norm_before_clipping(self, kata):
        run = ClipRun(self.MAX_NORM)
        _, norm = run.run(kata)
        note = norm_note(norm, run.grads, self.MAX_NORM)
        if isinstance(norm, torch.Tensor) and norm.numel() == 1 and float(norm) > 50:
            note = " (it includes the 100s left in .grad: discard the old gradients first)"
        check_norm(norm, run.ref_norm, f"grad_norm from {run.call}", note)

    def test_the_step_moves_the_parameters_by_the_clipped_gradients(self, kata):
        run = ClipRun(self.MAX_NORM)
        run.run(kata)
        for name, p, old, g, full in zip(run.names, run.model.parameters(), run.before, run.clipped, run.grads):
            moved = (p.detach() - old).double()
            want = torch.zeros_like(moved) if g is None else -STEP_LR * g
            note = ""
            if full is not None and not value_mismatch(moved, -STEP_LR * full, rtol=1e-4, atol=1e-7):
                note = (
                    " (that is -lr times the unclipped gradient: the clipping ran before backward or after the step; "
                    "hint 1)"
                )
            elif g is None and moved.abs().max() > 1:
                note = " (the 100s left in .grad moved it: discard the old gradients first)"
            mismatch = value_mismatch(moved, want, rtol=1e-4, atol=1e-7)
            check(
                not mismatch,
                f"after {run.call}, {name} moved by {describe(moved.float())}; expected -lr * its clipped gradient, "
                f"{describe(want.float())}{note}\n({mismatch})",
            )

    def test_grad_holds_the_clipped_gradients(self, kata):
        run = ClipRun(self.MAX_NORM)
        run.run(kata)
        for name, p, g in zip(run.names, run.model.parameters(), run.clipped):
            if g is None:
                check(
                    p.grad is None or not bool(p.grad.any()),
                    f"after {run.call}, {name}.grad is {describe(p.grad)}; expected None or zeros: the forward pass "
                    "does not use that layer",
                )
                continue
            check(p.grad is not None, f"after {run.call}, {name}.grad is None; expected its clipped gradient")
            mismatch = value_mismatch(p.grad.double(), g, rtol=1e-4, atol=1e-7)
            check(
                not mismatch,
                f"after {run.call}, {name}.grad is {describe(p.grad)}; expected the clipped gradient "
                f"{describe(g.float())}\n({mismatch})",
            )

    def test_gradients_within_max_norm_are_used_as_they_are(self, kata):
        run = ClipRun(100.0)
        _, norm = run.run(kata)
        check_norm(norm, run.ref_norm, f"grad_norm from {run.call}")
        for name, p, old, g in zip(run.names, run.model.parameters(), run.before, run.grads):
            moved = (p.detach() - old).double()
            want = torch.zeros_like(moved) if g is None else -STEP_LR * g
            mismatch = value_mismatch(moved, want, rtol=1e-4, atol=1e-7)
            check(
                not mismatch,
                f"after {run.call}, {name} moved by {describe(moved.float())}; expected "
                f"-lr * its gradient, {describe(want.float())} (within max_norm: not scaled)\n({mismatch})",
            )

    def test_returns_the_loss_as_a_float32_scalar_without_graph(self, kata):
        run = ClipRun(self.MAX_NORM, stale=False)
        loss, _ = run.run(kata)
        what = f"the loss from {run.call}"
        check(
            isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.dtype == torch.float32,
            f"{what} is {describe(loss)}; expected a 0-dim float32 tensor",
        )
        check(not loss.requires_grad and loss.grad_fn is None, f"{what} is {describe(loss)}; expected no graph")
        check_tensor(loss, torch.tensor(run.ref_loss), what, rtol=1e-5)


# ---------------------------------------------------------------- train_skipping_nonfinite

INF, NAN = math.inf, math.nan


class Batches:
    """Batches of 4 samples for a bias-free MLP 3 -> 4 -> 1, each of a known kind."""

    def __init__(self):
        g = torch.Generator().manual_seed(11)
        self.good = [(torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)) for _ in range(4)]
        x, y = torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)
        self.nan_loss = (x.clone().index_put_((torch.tensor(1), torch.tensor(2)), torch.tensor(NAN)), y)
        self.inf_loss = (x, y.clone().index_put_((torch.tensor(0), torch.tensor(0)), torch.tensor(INF)))
        # The model is exact on zeros (no biases): the root of a zero mean square is 0, a finite loss,
        # and its gradient is inf * 0 = nan.
        self.nan_grad = (torch.zeros(4, 3), torch.zeros(4, 1))
        # A finite loss whose backward overflows: the loss function puts an inf into the gradient.
        self.inf_grad = (torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g))
        # Finite losses whose backward puts an inf into the gradient of one layer's weight alone.
        self.inf_grad_first = (torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g))
        self.inf_grad_last = (torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g))


class RmseLoss:
    """sqrt(mean((out - y)**2)); records every backward pass that starts from a loss that is not finite."""

    def __init__(self, batches: Batches):
        self.inf_grad_y = batches.inf_grad[1]
        self.nonfinite_backwards = 0

    def _count(self, grad):
        self.nonfinite_backwards += 1
        return grad

    def __call__(self, out, y):
        self.y = y
        if out.requires_grad and torch.equal(y, self.inf_grad_y):
            out.register_hook(lambda g: g.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor(INF)))
        loss = ((out - y) ** 2).mean().sqrt()
        if loss.requires_grad and not bool(torch.isfinite(loss)):
            loss.register_hook(self._count)
        return loss


OPTIMIZERS = {
    "sgd momentum": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=0.05),
}


def skip_model() -> nn.Sequential:
    torch.manual_seed(4)
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 1, bias=False))


def poison(loss_fn: RmseLoss, y: torch.Tensor):
    """A gradient hook that puts an inf into a parameter's gradient when the loss was of the batch with `y`."""

    def hook(grad):
        if getattr(loss_fn, "y", None) is not None and torch.equal(loss_fn.y, y):
            return grad.index_put((torch.tensor(0), torch.tensor(0)), torch.tensor(INF))
        return grad

    return hook


class SkipRun:
    def __init__(self, kinds: list[str], opt_name: str = "sgd momentum", unused: bool = False):
        self.data = Batches()
        self.kinds = kinds
        goods = iter(self.data.good)
        self.batches = [next(goods) if k == "good" else getattr(self.data, k) for k in kinds]
        self.model = skip_model()
        self.ref = skip_model()
        if unused:  # a parameter the forward pass never uses: its gradient stays None
            for m in (self.model, self.ref):
                m.register_parameter("unused", nn.Parameter(torch.ones(2)))
        self.optimizer = OPTIMIZERS[opt_name](self.model.parameters())
        self.loss_fn = RmseLoss(self.data)
        self.model[0].weight.register_hook(poison(self.loss_fn, self.data.inf_grad_first[1]))
        self.model[2].weight.register_hook(poison(self.loss_fn, self.data.inf_grad_last[1]))
        # The reference: the same model and optimizer, trained on the finite batches alone.
        self.ref_opt = OPTIMIZERS[opt_name](self.ref.parameters())
        ref_loss = RmseLoss(self.data)
        for (x, y), kind in zip(self.batches, kinds):
            if kind == "good":
                self.ref_opt.zero_grad()
                ref_loss(self.ref(x), y).backward()
                self.ref_opt.step()
        self.expected_skips = sum(k != "good" for k in kinds)
        model = "model with an unused parameter" if unused else "model"
        self.call = f"train_skipping_nonfinite({model}, batches [{', '.join(kinds)}], rmse, {opt_name})"

    def run(self, kata):
        return call_kata(
            kata.train_skipping_nonfinite, self.call, self.model, self.batches, self.loss_fn, self.optimizer
        )

    def check_weights(self) -> None:
        __tracebackhide__ = True
        for (name, p), q in zip(self.model.named_parameters(), self.ref.parameters()):
            note = ""
            if not bool(torch.isfinite(p).all()):
                note = " (a step ran on a bad batch: check the loss before backward and every gradient after it)"
            mismatch = value_mismatch(p.detach(), q.detach(), rtol=1e-6, atol=1e-7)
            check(
                not mismatch,
                f"after {self.call}, {name} is {describe(p.detach())}; expected {describe(q.detach())}, the weights of "
                f"a run over the good batches alone{note}\n({mismatch})",
            )


MIXED = ["good", "nan_loss", "good", "nan_grad", "good", "inf_grad", "inf_loss", "good"]


@exercise("train_skipping_nonfinite")
class TestTrainSkippingNonfinite:
    def test_returns_how_many_batches_were_skipped(self, kata):
        run = SkipRun(MIXED)
        got = run.run(kata)
        check(
            type(got) is int and got == run.expected_skips,
            f"{run.call} returned {describe(got)}; expected the int {run.expected_skips}, one per bad batch",
        )

    @pytest.mark.parametrize("opt_name", OPTIMIZERS)
    def test_the_weights_are_those_of_the_good_batches_alone(self, kata, opt_name):
        run = SkipRun(MIXED, opt_name)
        run.run(kata)
        run.check_weights()

    @pytest.mark.parametrize("opt_name", OPTIMIZERS)
    def test_the_optimizer_state_is_that_of_the_good_batches_alone(self, kata, opt_name):
        run = SkipRun(MIXED, opt_name)
        run.run(kata)
        got, want = run.optimizer.state_dict()["state"], run.ref_opt.state_dict()["state"]
        check(
            set(got) == set(want),
            f"after {run.call}, the optimizer holds state for parameters {sorted(got)}; expected {sorted(want)}",
        )
        for i in want:
            for key, value in want[i].items():
                mine = got[i].get(key)
                mismatch = (
                    value_mismatch(
                        torch.as_tensor(mine).double(), torch.as_tensor(value).double(), rtol=1e-6, atol=1e-7
                    )
                    if mine is not None
                    else "missing"
                )
                check(
                    not mismatch,
                    f"after {run.call}, the optimizer's {key!r} of parameter {i} is {describe(mine)}; expected "
                    f"{describe(value)}, as after the good batches alone: a skipped batch must not reach the optimizer "
                    f"(a step with zeroed gradients still moves its momentum and counts a step)\n({mismatch})",
                )

    @pytest.mark.parametrize(
        "kinds",
        [
            ["good", "nan_grad", "good"],
            ["good", "inf_grad", "good"],
            ["good", "inf_grad_first", "good"],
            ["good", "inf_grad_last", "good"],
            ["nan_loss", "good"],
            ["inf_loss", "good", "good"],
        ],
        ids=[
            "nan gradient, finite loss",
            "inf gradient, finite loss",
            "inf in the first layer's gradient alone",
            "inf in the last layer's gradient alone",
            "nan loss first",
            "inf loss",
        ],
    )
    def test_each_kind_of_bad_batch_is_skipped_and_the_next_one_trains(self, kata, kinds):
        run = SkipRun(kinds)
        got = run.run(kata)
        run.check_weights()
        check(
            type(got) is int and got == 1,
            f"{run.call} returned {describe(got)}; expected 1: only the bad batch is skipped, the batches after it train",
        )

    def test_a_nonfinite_loss_gets_no_backward_pass(self, kata):
        run = SkipRun(["good", "nan_loss", "inf_loss", "good"])
        run.run(kata)
        check(
            run.loss_fn.nonfinite_backwards == 0,
            f"{run.call} ran {run.loss_fn.nonfinite_backwards} backward pass(es) from a nan or infinite loss; expected "
            "none: check the loss before computing its gradients",
        )

    def test_a_parameter_without_gradient_is_no_error(self, kata):
        run = SkipRun(["good", "nan_grad", "good"], unused=True)
        got = run.run(kata)
        check(type(got) is int and got == 1, f"{run.call} returned {describe(got)}; expected 1")
        run.check_weights()

    def test_finite_batches_all_train(self, kata):
        run = SkipRun(["good", "good", "good"])
        got = run.run(kata)
        check(type(got) is int and got == 0, f"{run.call} returned {describe(got)}; expected 0")
        run.check_weights()
