"""Tests for kata 16, mixed precision: one class per exercise, in learning order.

On the CPU, mixed precision means bfloat16; on CUDA, float16 (the `cuda` tests, skipped where
there is no GPU, run the same checks with float16 and CUDA's GradScaler). Which dtype autocast
gives an operation comes from its op lists, which differ between devices and may change between
PyTorch versions: the tests pin only what has been stable for many releases (matrix products in
the lower dtype, losses in float32) and compare the rest with what the installed PyTorch does.
The references (float32 forward passes and gradients, the clipped gradients, the float64 matrix
product) are computed here, independently of the code under test, with tolerances that accept
16-bit rounding but not 16-bit mistakes.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from dojo.testing import CPU, CUDA, check, check_tensor, describe, exercise, value_mismatch

#: Mixed precision is specified for the CPU (bfloat16) and CUDA (float16).
AMP_DEVICES = [CPU, CUDA]
on_amp_devices = pytest.mark.parametrize("device", AMP_DEVICES, indirect=True)

LR = 0.1  # plain SGD: a parameter moves by exactly -LR * its .grad


def low_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cpu" else torch.float16


def low_name(device: torch.device) -> str:
    return "bfloat16" if device.type == "cpu" else "float16"


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def call_kata(fn, call, *args):
    """fn(*args); an error that PyTorch raises inside it becomes a message naming the call."""
    __tracebackhide__ = True
    try:
        return fn(*args)
    except NotImplementedError:
        raise  # an unfilled stub: the plugin reports it as not done yet
    except (RuntimeError, AssertionError, ValueError, TypeError) as err:
        check(False, f"{call} raised {type(err).__name__}: {first_line(err)!r}")


def tiny_model(device, seed=0) -> nn.Sequential:
    """A float32 MLP 4 -> 8 -> 3 with two Linear layers, on `device`."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)


def batch(device, n=6, classes=False, seed=1):
    """x (n, 4) float32 and y: (n, 3) float32 targets, or n class indices when `classes`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 3, (n,), generator=g) if classes else torch.randn(n, 3, generator=g)
    return x.to(device), y.to(device)


LOSSES = {"mse": (nn.MSELoss(), False), "cross_entropy": (nn.CrossEntropyLoss(), True)}


class LinearDtypes:
    """Records the dtype of every output of the model's Linear layers during forward passes."""

    def __init__(self, model: nn.Module):
        self.seen: list[torch.dtype] = []
        self.handles = [
            m.register_forward_hook(lambda _m, _i, out: self.seen.append(out.dtype))
            for m in model.modules()
            if isinstance(m, nn.Linear)
        ]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def stale_grads(model: nn.Module) -> None:
    """Fill every .grad with 100s, as a previous step's backward that nobody cleared would."""
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)


def reference_grads(model: nn.Module, x, y, loss_fn):
    """(loss, grads) of a float32 twin of `model`, no autocast: the trusted reference."""
    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.grad = None
    loss = loss_fn(twin(x), y)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in twin.parameters()]


def low_tolerance(ref: torch.Tensor) -> dict:
    """Tolerances that accept a forward pass in 16 bits: 3% of the tensor's largest value."""
    scale = float(ref.abs().max()) if ref.numel() else 1.0
    return {"rtol": 3e-2, "atol": 3e-2 * max(scale, 1e-3)}


def check_params_float32(model: nn.Module, params_before: list[torch.Tensor], call: str) -> None:
    __tracebackhide__ = True
    now = list(model.parameters())
    check(
        len(now) == len(params_before) and all(p is q for p, q in zip(now, params_before)),
        f"after {call}, the model holds other parameter tensors than before; expected the same tensors "
        "(the optimizer holds those)",
    )
    names = [n for n, p in model.named_parameters() if p.dtype != torch.float32]
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    check(
        not names,
        f"after {call}, the parameters {names} are {', '.join(dtypes)}; expected every parameter to stay float32 "
        "(the float32 master weights; only the forward pass computes in 16 bits, the model itself is not converted)",
    )


def check_forward_low(recorder: LinearDtypes, device, call: str) -> None:
    __tracebackhide__ = True
    seen = sorted({str(d) for d in recorder.seen})
    want = low_dtype(device)
    check(
        recorder.seen and all(d == want for d in recorder.seen),
        f"during {call}, the model's Linear layers returned {', '.join(seen) or 'nothing (no forward pass)'}; "
        f"expected {want} on {device.type}: the forward pass should run in mixed precision "
        f"({low_name(device)} on {device.type})",
    )


def check_no_graph(t, what: str) -> None:
    __tracebackhide__ = True
    check(
        isinstance(t, torch.Tensor) and not t.requires_grad and t.grad_fn is None,
        f"{what} is {describe(t)}"
        + (f" with grad_fn {type(t.grad_fn).__name__}" if isinstance(t, torch.Tensor) and t.grad_fn else "")
        + "; expected a tensor that carries no graph (requires_grad False, grad_fn None)",
    )


def check_scalar_float32(t, device, what: str) -> None:
    __tracebackhide__ = True
    check(
        isinstance(t, torch.Tensor) and t.dim() == 0 and t.dtype == torch.float32 and t.device.type == device.type,
        f"{what} is {describe(t)}; expected a 0-dim float32 tensor on {device.type}",
    )


# ---------------------------------------------------------------- cast_damage

INF, NAN = math.inf, math.nan
F32_MAX = torch.finfo(torch.float32).max
H, B = torch.float16, torch.bfloat16


def damage(overflow=0, underflow=0, rounded=0):
    return {"overflow": overflow, "underflow": underflow, "rounded": rounded}


# (id, values of x, dtype, expected counts)
CAST_CASES = [
    ("65504 is the largest float16", [65504.0], H, damage()),
    ("65519 rounds down to 65504 in float16", [65519.0], H, damage(rounded=1)),
    ("65520 overflows float16", [65520.0], H, damage(overflow=1)),
    ("-65520 overflows float16 to -inf", [-65520.0], H, damage(overflow=1)),
    ("1e-8 underflows float16", [1e-8], H, damage(underflow=1)),
    ("-1e-8 underflows float16 to -0", [-1e-8], H, damage(underflow=1)),
    ("1e-5 becomes a float16 subnormal, not 0", [1e-5], H, damage(rounded=1)),
    ("3e-8 rounds up to float16's smallest subnormal", [3e-8], H, damage(rounded=1)),
    ("1 + 2**-8 is exact in float16", [1.0 + 2**-8], H, damage()),
    ("1 + 2**-8 rounds to 1 in bfloat16", [1.0 + 2**-8], B, damage(rounded=1)),
    ("1 + 2**-7 is exact in bfloat16", [1.0 + 2**-7], B, damage()),
    ("65520 stays finite in bfloat16 (65536)", [65520.0], B, damage(rounded=1)),
    ("1e-8 stays nonzero in bfloat16", [1e-8], B, damage(rounded=1)),
    ("float32's largest value overflows bfloat16", [F32_MAX, -F32_MAX], B, damage(overflow=2)),
    ("1e-40 is a bfloat16 subnormal", [1e-40], B, damage(rounded=1)),
    ("1e-40 underflows float16", [1e-40], H, damage(underflow=1)),
    ("inf, -inf and nan are not counted (float16)", [INF, -INF, NAN], H, damage()),
    ("inf, -inf and nan are not counted (bfloat16)", [INF, -INF, NAN], B, damage()),
    ("0.0 and -0.0 are not counted", [0.0, -0.0], H, damage()),
    ("exact values are not counted", [1.0, -0.5, 1024.0, 0.125], B, damage()),
    ("float32 damages nothing", [65520.0, 1e-8, 1.0 + 2**-8, NAN, INF, 0.1], torch.float32, damage()),
    (
        "a 2-D mix, each element counted once",
        [[65520.0, -7e4, 1e-8, 2.0], [1.0 + 2**-8, 0.1, NAN, -INF]],
        H,
        damage(overflow=2, underflow=1, rounded=1),
    ),
    ("a 0-d tensor", 0.1, B, damage(rounded=1)),
    ("an empty tensor", [], H, damage()),
]


def check_counts(got, expected, call):
    __tracebackhide__ = True
    check(
        isinstance(got, dict) and set(got) == set(expected),
        f"{call} returned {describe(got)}; expected a dict with the keys 'overflow', 'underflow', 'rounded': {expected}",
    )
    kinds = {k: type(v).__name__ for k, v in got.items() if type(v) is not int}
    check(not kinds, f"{call} returned {got}; the values {kinds} are not Python ints; expected {expected}")
    check(got == expected, f"{call} returned {got}; expected {expected}")


@exercise("cast_damage")
class TestCastDamage:
    @pytest.mark.parametrize("case", CAST_CASES, ids=[c[0] for c in CAST_CASES])
    def test_counts_overflow_underflow_and_rounding(self, kata, case):
        label, values, dtype, expected = case
        x = torch.tensor(values, dtype=torch.float32)
        check_counts(kata.cast_damage(x, dtype), expected, f"cast_damage(x={values}, {dtype}) [{label}]")

    @on_amp_devices
    def test_counts_on_the_device_of_x(self, kata, device):
        values = [65520.0, 1e-8, 0.1, 65504.0, NAN]
        x = torch.tensor(values, device=device)
        check_counts(
            kata.cast_damage(x, torch.float16),
            damage(overflow=1, underflow=1, rounded=1),
            f"cast_damage(x={values} on {device.type}, torch.float16)",
        )

    def test_x_is_left_as_it_was(self, kata):
        values = [65520.0, 1e-8, NAN, -INF, 0.1]
        x = torch.tensor(values)
        before = x.clone()
        kata.cast_damage(x, torch.float16)
        check(
            x.dtype == torch.float32 and not value_mismatch(x, before, rtol=0.0, atol=0.0),
            f"after cast_damage(x={values}, torch.float16), x is {describe(x)}; expected it unchanged",
        )


# ---------------------------------------------------------------- autocast_dtypes


def classifier_inputs(device):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, generator=g).to(device)
    w = torch.randn(5, 3, generator=g).to(device)
    target = torch.tensor([0, 2, 1, 2], device=device)
    return x, w, target


KEYS = ("logits", "probs", "loss")


def call_autocast_dtypes(kata, device):
    __tracebackhide__ = True
    x, w, target = classifier_inputs(device)
    got = kata.autocast_dtypes(x, w, target, device)
    check(
        isinstance(got, dict) and set(got) == set(KEYS) and all(isinstance(v, torch.dtype) for v in got.values()),
        f"autocast_dtypes(x, w, target, {device.type!r}) returned {describe(got)}; expected a dict of the three "
        "keys 'logits', 'probs', 'loss', each mapped to a torch.dtype",
    )
    return got


@exercise("autocast_dtypes")
class TestAutocastDtypes:
    @on_amp_devices
    def test_the_logits_come_out_in_the_lower_dtype(self, kata, device):
        got = call_autocast_dtypes(kata, device)
        want = low_dtype(device)
        note = ""
        if got["logits"] == torch.float32:
            note = " (float32: the product ran outside a mixed-precision region for this device)"
        check(
            got["logits"] == want,
            f"autocast_dtypes(x, w, target, {device.type!r}) says the logits are {got['logits']}; expected {want}: "
            f"in a mixed-precision region on {device.type}, a matrix product runs in {low_name(device)}{note}",
        )

    @on_amp_devices
    def test_the_loss_stays_float32(self, kata, device):
        got = call_autocast_dtypes(kata, device)
        check(
            got["loss"] == torch.float32,
            f"autocast_dtypes(x, w, target, {device.type!r}) says the loss is {got['loss']}; expected torch.float32: "
            "computed inside the region, a loss runs in float32 (a loss computed after the region closed, from "
            "lower-precision logits, keeps their dtype)",
        )

    @on_amp_devices
    def test_the_softmax_has_the_dtype_mixed_precision_gives_it_here(self, kata, device):
        x, w, _ = classifier_inputs(device)
        with torch.autocast(device.type, dtype=low_dtype(device)):
            want = torch.softmax(x @ w, dim=1).dtype  # what the installed PyTorch does on this device
        got = call_autocast_dtypes(kata, device)
        check(
            got["probs"] == want,
            f"autocast_dtypes(x, w, target, {device.type!r}) says the softmax is {got['probs']}; expected {want}: "
            f"that is the dtype a softmax of the region's logits has inside a mixed-precision region on "
            f"{device.type} with torch {torch.__version__} (CPU and CUDA differ here: print it rather than guess)",
        )


# ---------------------------------------------------------------- amp_predict


def call_predict(kata, device, n=5):
    model = tiny_model(device)
    x, _ = batch(device, n=n)
    with torch.no_grad():
        expected = copy.deepcopy(model)(x)  # float32 reference, built before the call
    params = [p.detach().clone() for p in model.parameters()]
    recorder = LinearDtypes(model)
    try:
        got = call_kata(kata.amp_predict, f"amp_predict(model, x, {device.type!r})", model, x, device)
    finally:
        recorder.close()
    return model, params, recorder, got, expected


@exercise("amp_predict")
class TestAmpPredict:
    @on_amp_devices
    def test_returns_float32_outputs_of_the_models_shape_on_the_device(self, kata, device):
        _, _, _, got, expected = call_predict(kata, device)
        call = f"amp_predict(model, x of shape (5, 4), {device.type!r})"
        check(
            isinstance(got, torch.Tensor) and got.dtype == torch.float32,
            f"{call} returned {describe(got)}; expected float32 outputs (convert the 16-bit outputs before a "
            "metric uses them)",
        )
        check(
            got.shape == expected.shape and got.device.type == device.type,
            f"{call} returned {describe(got)}; expected shape {tuple(expected.shape)} on {device.type}",
        )

    @on_amp_devices
    def test_the_forward_pass_runs_in_the_lower_dtype(self, kata, device):
        _, _, recorder, _, _ = call_predict(kata, device)
        check_forward_low(recorder, device, f"amp_predict(model, x, {device.type!r})")

    @on_amp_devices
    def test_values_match_the_float32_forward_to_16_bit_accuracy(self, kata, device):
        _, _, _, got, expected = call_predict(kata, device)
        check_tensor(
            got,
            expected,
            f"amp_predict(model, x, {device.type!r}) (compared with the float32 forward pass)",
            check_dtype=False,
            **low_tolerance(expected),
        )

    def test_a_batch_of_one(self, kata):
        device = torch.device("cpu")
        _, _, _, got, expected = call_predict(kata, device, n=1)
        check_tensor(
            got, expected, "amp_predict(model, x of shape (1, 4), 'cpu')", check_dtype=False, **low_tolerance(expected)
        )

    @on_amp_devices
    def test_the_outputs_carry_no_graph(self, kata, device):
        _, _, _, got, _ = call_predict(kata, device)
        check_no_graph(got, f"the result of amp_predict(model, x, {device.type!r})")

    @on_amp_devices
    def test_the_callers_model_stays_float32_and_unchanged(self, kata, device):
        model, params, _, _, _ = call_predict(kata, device)
        dtypes = sorted({str(p.dtype) for p in model.parameters()})
        check(
            all(p.dtype == torch.float32 for p in model.parameters()),
            f"after amp_predict(model, x, {device.type!r}), the model's parameters are {', '.join(dtypes)}; "
            "expected them left float32: the caller's model is not converted",
        )
        changed = [n for (n, p), q in zip(model.named_parameters(), params) if not torch.equal(p.detach(), q)]
        check(not changed, f"after amp_predict(model, x, {device.type!r}), the parameters {changed} changed")


# ---------------------------------------------------------------- amp_train_step


class TrainRun:
    """One call of a train step on a fresh tiny model, with everything a test needs to judge it."""

    def __init__(self, loss_name="mse", device="cpu", stale=True):
        self.device = torch.device(device)
        self.loss_fn, classes = LOSSES[loss_name]
        self.model = tiny_model(self.device)
        self.x, self.y = batch(self.device, classes=classes)
        self.ref_loss, self.ref_grads = reference_grads(self.model, self.x, self.y, self.loss_fn)
        self.before = [p.detach().clone() for p in self.model.parameters()]
        self.params = list(self.model.parameters())
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR)
        if stale:
            stale_grads(self.model)
        self.recorder = LinearDtypes(self.model)

    def run(self, fn, *extra, call=""):
        try:
            args = (self.model, self.x, self.y, self.loss_fn, self.optimizer, *extra, self.device)
            return call_kata(
                fn,
                call
                or f"{fn.__name__}(model, x, y, loss_fn, optimizer{', ...' if extra else ''}, {self.device.type!r})",
                *args,
            )
        finally:
            self.recorder.close()

    def names(self):
        return [n for n, _ in self.model.named_parameters()]


def check_grads(run: TrainRun, expected: list[torch.Tensor], call: str, why: str) -> None:
    __tracebackhide__ = True
    for name, p, want in zip(run.names(), run.model.parameters(), expected):
        check(
            p.grad is not None,
            f"after {call}, {name}.grad is None; expected the gradient the step used ({why})",
        )
        check(
            p.grad.dtype == torch.float32,
            f"after {call}, {name}.grad is {p.grad.dtype}; expected float32 gradients of the float32 parameters",
        )
        note = ""
        if not value_mismatch(p.grad, want + 100.0, **low_tolerance(want)):
            note = (
                " (that is the expected gradient plus the 100s left in .grad before the call: backward adds to .grad)"
            )
        mismatch = value_mismatch(p.grad, want, **low_tolerance(want))
        check(
            not mismatch,
            f"after {call}, {name}.grad is {describe(p.grad)}; expected {describe(want)} ({why}){note}\n({mismatch})",
        )


def check_moved(run: TrainRun, grads: list[torch.Tensor], call: str) -> None:
    __tracebackhide__ = True
    for name, p, old, g in zip(run.names(), run.model.parameters(), run.before, grads):
        step = p.detach().float() - old
        want = -LR * g
        check(
            bool(step.abs().max() > 0),
            f"after {call}, {name} still holds its old values; expected the optimizer's step to move it",
        )
        mismatch = value_mismatch(step, want, **low_tolerance(want))
        check(
            not mismatch,
            f"after {call}, {name} moved by {describe(step)}; expected -lr * gradient = {describe(want)}\n({mismatch})",
        )


@exercise("amp_train_step")
class TestAmpTrainStep:
    @on_amp_devices
    @pytest.mark.parametrize("loss_name", LOSSES)
    def test_returns_the_loss_as_a_float32_scalar_without_graph(self, kata, device, loss_name):
        run = TrainRun(loss_name, device)
        got = run.run(kata.amp_train_step)
        call = f"amp_train_step(model, x, y, {loss_name} loss, sgd, {device.type!r})"
        check_scalar_float32(got, device, f"the result of {call}")
        check_no_graph(got, f"the result of {call}")
        check_tensor(got, run.ref_loss, f"the loss {call} returned (compared with the float32 loss)", rtol=2e-2)

    @on_amp_devices
    def test_the_forward_pass_runs_in_the_lower_dtype(self, kata, device):
        run = TrainRun("mse", device)
        run.run(kata.amp_train_step)
        check_forward_low(run.recorder, device, f"amp_train_step(model, x, y, mse, sgd, {device.type!r})")

    @on_amp_devices
    def test_the_parameters_stay_the_same_float32_tensors(self, kata, device):
        run = TrainRun("mse", device)
        run.run(kata.amp_train_step)
        check_params_float32(run.model, run.params, f"amp_train_step(model, x, y, mse, sgd, {device.type!r})")

    @on_amp_devices
    @pytest.mark.parametrize("loss_name", LOSSES)
    def test_grad_holds_this_steps_float32_gradient(self, kata, device, loss_name):
        run = TrainRun(loss_name, device)
        run.run(kata.amp_train_step)
        check_grads(
            run,
            run.ref_grads,
            f"amp_train_step(model, x, y, {loss_name} loss, sgd, {device.type!r}) with 100s left in every .grad",
            "the float32 gradient of this batch's loss, to 16-bit accuracy, without what .grad held before",
        )

    @on_amp_devices
    def test_the_optimizer_steps_with_that_gradient(self, kata, device):
        run = TrainRun("mse", device)
        run.run(kata.amp_train_step)
        check_moved(run, run.ref_grads, f"amp_train_step(model, x, y, mse, sgd(lr={LR}), {device.type!r})")


# ---------------------------------------------------------------- float32_matmul


def matmul_inputs(device, dtype=torch.float32, requires_grad=False):
    g = torch.Generator().manual_seed(4)
    a = torch.randn(3, 6, generator=g).to(device, dtype)
    b = torch.randn(6, 2, generator=g).to(device)
    # Exact in float64: the truth a float32 product must match to float32's accuracy.
    expected = (a.double() @ b.double()).float()
    if requires_grad:
        a.requires_grad_()
        b.requires_grad_()
    return a, b, expected


def call_matmul(kata, a, b, call):
    __tracebackhide__ = True
    return call_kata(kata.float32_matmul, call, a, b)


def check_product(got, expected, call):
    __tracebackhide__ = True
    check(
        isinstance(got, torch.Tensor) and got.dtype == torch.float32,
        f"{call} returned {describe(got)}; expected a float32 tensor",
    )
    check(
        got.shape == expected.shape and got.device == expected.device,
        f"{call} returned {describe(got)}; expected shape {tuple(expected.shape)} on {expected.device}",
    )
    mismatch = value_mismatch(got, expected)
    note = ""
    if mismatch and not value_mismatch(got, expected, **low_tolerance(expected)):
        note = " (right to 2 or 3 digits only: the product was computed in 16 bits and converted afterwards)"
    check(not mismatch, f"{call} returned {describe(got)}; expected {describe(expected)}{note}\n({mismatch})")


@exercise("float32_matmul")
class TestFloat32Matmul:
    @on_amp_devices
    def test_float32_inputs_inside_a_region(self, kata, device):
        a, b, expected = matmul_inputs(device)
        call = f"float32_matmul(a float32 (3, 6), b float32 (6, 2)) inside torch.autocast({device.type!r})"
        with torch.autocast(device.type, dtype=low_dtype(device)):
            got = call_matmul(kata, a, b, call)
        check_product(got, expected, call)

    @on_amp_devices
    def test_a_lower_precision_input_inside_a_region(self, kata, device):
        a, b, expected = matmul_inputs(device, dtype=low_dtype(device))
        call = f"float32_matmul(a {low_name(device)} (3, 6), b float32 (6, 2)) inside torch.autocast({device.type!r})"
        with torch.autocast(device.type, dtype=low_dtype(device)):
            got = call_matmul(kata, a, b, call)
        check_product(got, expected, call)

    def test_outside_any_region(self, kata):
        a, b, expected = matmul_inputs("cpu", dtype=torch.bfloat16)
        call = "float32_matmul(a bfloat16 (3, 6), b float32 (6, 2)) outside any autocast region"
        check_product(call_matmul(kata, a, b, call), expected, call)

    @on_amp_devices
    def test_the_callers_region_stays_as_it_was(self, kata, device):
        a, b, _ = matmul_inputs(device)
        call = f"float32_matmul(a, b) inside torch.autocast({device.type!r})"
        with torch.autocast(device.type, dtype=low_dtype(device)):
            call_matmul(kata, a, b, call)
            enabled = torch.is_autocast_enabled(device.type)
            after = (a @ b).dtype
        check(
            enabled and after == low_dtype(device),
            f"after {call}, the caller's own a @ b in the region gives {after} (mixed precision "
            f"{'on' if enabled else 'off'}); expected {low_dtype(device)}: the function must switch mixed precision "
            "off for its own product only",
        )

    def test_the_result_carries_a_graph_back_to_the_inputs(self, kata):
        a, b, _ = matmul_inputs("cpu", requires_grad=True)
        call = "float32_matmul(a, b) inside torch.autocast('cpu'), a and b requiring grad"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = call_matmul(kata, a, b, call)
        check(
            isinstance(got, torch.Tensor) and got.requires_grad,
            f"{call} returned {describe(got)}; expected a result that carries a graph back to a and b",
        )
        got.sum().backward()
        want_a = torch.ones(3, 2) @ b.detach().T
        check(
            a.grad is not None and b.grad is not None,
            f"after {call} and result.sum().backward(), a.grad or b.grad is None",
        )
        check_tensor(a.grad, want_a, f"a.grad after {call} and result.sum().backward()")


# ---------------------------------------------------------------- scaled_train_step

INIT_SCALE = 1024.0  # large enough that a scaled gradient is obviously not the true one


def make_scaler(device, growth_interval=2000):
    scaler_class = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if scaler_class is None:
        pytest.skip(f"torch {torch.__version__} has no torch.amp.GradScaler (it exists from torch 2.3 on)")
    try:
        return scaler_class(device.type, init_scale=INIT_SCALE, growth_interval=growth_interval)
    except (RuntimeError, TypeError, ValueError) as err:
        pytest.skip(f"torch {torch.__version__} has no GradScaler for {device.type!r}: {first_line(err)}")


def clipped(grads, max_norm):
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = min(1.0, max_norm / float(total))
    return total, [g * coef for g in grads]


def scaled_call(kata, run, scaler, max_norm, call):
    return run.run(kata.scaled_train_step, scaler, max_norm, call=call)


def unpack(got, call):
    __tracebackhide__ = True
    check(
        isinstance(got, tuple) and len(got) == 2,
        f"{call} returned {describe(got)}; expected the tuple (loss, grad_norm)",
    )
    return got


@exercise("scaled_train_step")
class TestScaledTrainStep:
    MAX_NORM = 0.5  # below the gradients' norm (about 1.1): the clipping is active

    def _run(self, kata, device, max_norm=MAX_NORM, loss_name="mse", growth_interval=2000):
        run = TrainRun(loss_name, device)
        scaler = make_scaler(run.device, growth_interval)
        call = f"scaled_train_step(model, x, y, {loss_name}, sgd, scaler(scale {INIT_SCALE:g}), max_norm={max_norm:g}, {run.device.type!r})"
        got = unpack(scaled_call(kata, run, scaler, max_norm, call), call)
        return run, scaler, call, got

    @on_amp_devices
    def test_reports_the_norm_of_the_true_gradients_before_clipping(self, kata, device):
        run, _, call, (_, norm) = self._run(kata, device)
        ref_norm, _ = clipped(run.ref_grads, self.MAX_NORM)
        check_scalar_float32(norm, device, f"grad_norm from {call}")
        check_no_graph(norm, f"grad_norm from {call}")
        note = ""
        if isinstance(norm, torch.Tensor) and abs(float(norm) / float(ref_norm) - INIT_SCALE) < 0.05 * INIT_SCALE:
            note = " (that is the scale times the true norm: the norm was measured on the scaled gradients)"
        elif isinstance(norm, torch.Tensor) and abs(float(norm) - self.MAX_NORM) < 1e-3:
            note = " (that is max_norm: the norm was measured after clipping)"
        check_tensor(norm, ref_norm.to(norm.device), f"grad_norm from {call}{note}", rtol=3e-2, check_device=False)

    @on_amp_devices
    def test_grad_holds_the_true_gradients_clipped(self, kata, device):
        run, _, call, _ = self._run(kata, device)
        _, want = clipped(run.ref_grads, self.MAX_NORM)
        check_grads(
            run,
            want,
            f"{call} with 100s left in every .grad",
            f"this batch's true float32 gradient scaled down to a total norm of {self.MAX_NORM:g}",
        )

    @on_amp_devices
    def test_the_step_uses_the_clipped_true_gradients(self, kata, device):
        run, _, call, _ = self._run(kata, device)
        _, want = clipped(run.ref_grads, self.MAX_NORM)
        check_moved(run, want, call)

    def test_gradients_under_max_norm_are_not_changed(self, kata):
        run, _, call, _ = self._run(kata, "cpu", max_norm=1e6)
        check_grads(run, run.ref_grads, call, "this batch's true float32 gradient: its norm is far below max_norm")
        check_moved(run, run.ref_grads, call)

    @on_amp_devices
    @pytest.mark.parametrize("loss_name", LOSSES)
    def test_returns_the_true_loss_as_a_float32_scalar_without_graph(self, kata, device, loss_name):
        run, _, call, (loss, _) = self._run(kata, device, loss_name=loss_name)
        check_scalar_float32(loss, device, f"the loss from {call}")
        check_no_graph(loss, f"the loss from {call}")
        note = ""
        if abs(float(loss) / float(run.ref_loss) - INIT_SCALE) < 0.05 * INIT_SCALE:
            note = " (that is the scaled loss)"
        check_tensor(loss, run.ref_loss, f"the loss from {call} (compared with the float32 loss){note}", rtol=2e-2)

    @on_amp_devices
    def test_the_forward_pass_runs_in_the_lower_dtype(self, kata, device):
        run, _, call, _ = self._run(kata, device)
        check_forward_low(run.recorder, device, call)

    @on_amp_devices
    def test_the_parameters_stay_the_same_float32_tensors(self, kata, device):
        run, _, call, _ = self._run(kata, device)
        check_params_float32(run.model, run.params, call)

    def _overflow(self, kata, device):
        run = TrainRun("mse", device)
        scaler = make_scaler(run.device)
        run.x[0, 0] = math.inf  # the loss is inf, every gradient inf or nan
        call = f"scaled_train_step(model, x with an inf, y, mse, sgd, scaler(scale {INIT_SCALE:g}), max_norm=0.5, {run.device.type!r})"
        got = unpack(scaled_call(kata, run, scaler, 0.5, call), call)
        return run, scaler, call, got

    @on_amp_devices
    def test_an_overflowing_step_is_skipped(self, kata, device):
        run, _, call, (_, norm) = self._overflow(kata, device)
        for name, p, old in zip(run.names(), run.model.parameters(), run.before):
            check(
                torch.equal(p.detach(), old),
                f"after {call}, {name} is {describe(p.detach())}; expected its old values, exactly: a step whose "
                "gradients are inf or nan must be skipped",
            )
        check(
            isinstance(norm, torch.Tensor) and norm.numel() == 1 and not bool(norm.isfinite().all()),
            f"{call} returned grad_norm {describe(norm)}; expected inf or nan (the true gradients' norm)",
        )

    @on_amp_devices
    def test_an_overflowing_step_lowers_the_scale(self, kata, device):
        _, scaler, call, _ = self._overflow(kata, device)
        check(
            scaler.get_scale() < INIT_SCALE,
            f"after {call}, the scaler's scale is {scaler.get_scale():g}; expected it lowered from {INIT_SCALE:g} "
            "(the scaler adjusts its scale after every step)",
        )

    @on_amp_devices
    def test_the_next_finite_step_after_a_skipped_one_is_taken(self, kata, device):
        run, scaler, call, _ = self._overflow(kata, device)
        run.x[0, 0] = batch(run.device)[0][0, 0]  # the finite batch again
        run.recorder = LinearDtypes(run.model)
        second = f"a second call with the finite batch, after {call}"
        unpack(scaled_call(kata, run, scaler, self.MAX_NORM, second), second)
        _, want = clipped(run.ref_grads, self.MAX_NORM)
        check_moved(run, want, second)

    def test_the_scale_grows_after_good_steps_as_the_scaler_says(self, kata):
        _, scaler, call, _ = self._run(kata, "cpu", growth_interval=1)
        check(
            scaler.get_scale() == 2 * INIT_SCALE,
            f"after {call} with a scaler that grows every good step (growth_interval=1), its scale is "
            f"{scaler.get_scale():g}; expected {2 * INIT_SCALE:g} (the scaler adjusts its scale after every step)",
        )
