"""What the kata tests share: the exercise mark, device parameters, and learner-facing asserts.

Every helper hides its own frame (`__tracebackhide__`), so a failing test points at the test line
and its message, never at this file. Messages say what was called, what came back and what was
expected; the test run adds which hint to read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from dojo.stubs import STUB_TAG


def exercise(name: str) -> pytest.MarkDecorator:
    """Tie a test (or a class of tests) to the exercise it checks, by the function's name."""
    return pytest.mark.exercise(name)


def _accelerator_param(name: str, available: bool, why: str) -> Any:
    return pytest.param(
        name,
        id=name,
        marks=[getattr(pytest.mark, name), pytest.mark.skipif(not available, reason=why)],
    )


_mps = getattr(torch.backends, "mps", None)
CPU = pytest.param("cpu", id="cpu", marks=pytest.mark.cpu)
CUDA = _accelerator_param("cuda", torch.cuda.is_available(), "CUDA is not available on this machine")
MPS = _accelerator_param("mps", bool(_mps and _mps.is_available()), "MPS (Apple GPU) is not available on this machine")
#: Devices a test runs on; the accelerator ones show as SKIPPED, with the reason, where absent.
DEVICES = [CPU, CUDA, MPS]
#: For a trap that only exists on a GPU (a CUDA tensor's .numpy(), asynchronous kernels, ...).
GPU_ONLY = [CUDA]


def describe(value: Any) -> str:
    """A short, readable description of what a learner's function returned."""
    if isinstance(value, torch.Tensor):
        text = f"tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device}"
        if value.requires_grad:
            text += ", requires_grad=True"
        if value.numel() <= 12 and value.device.type != "meta":
            text += f", values={value.detach().cpu().tolist()}"
        return text + ")"
    if isinstance(value, np.ndarray):
        text = f"ndarray(shape={value.shape}, dtype={value.dtype}"
        return text + (f", values={value.tolist()})" if value.size <= 12 else ")")
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 80 else text[:77] + '...'}"


def check(condition: Any, message: str) -> None:
    """assert, with a message for the learner (and without pytest's rewritten comparison noise)."""
    __tracebackhide__ = True
    if not condition:
        pytest.fail(message, pytrace=False)


def check_tensor(
    got: Any,
    expected: torch.Tensor,
    what: str,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    check_device: bool = True,
) -> None:
    """`got` must be a tensor like `expected`: same shape, dtype, device, and values (to tolerance).

    `what` names the call or the tensor checked, e.g. "column(x of shape (3, 4), 2)".
    """
    __tracebackhide__ = True
    want = describe(expected)
    check(isinstance(got, torch.Tensor), f"{what}: got {describe(got)}; expected a tensor: {want}")
    check(got.shape == expected.shape, f"{what}: got shape {tuple(got.shape)}; expected shape {tuple(expected.shape)}")
    if check_dtype:
        check(got.dtype == expected.dtype, f"{what}: got dtype {got.dtype}; expected {expected.dtype}")
    if check_device:
        check(got.device == expected.device, f"{what}: got a tensor on {got.device}; expected it on {expected.device}")
    mismatch = value_mismatch(got, expected, rtol=rtol, atol=atol)
    check(not mismatch, f"{what}: got the wrong values: {describe(got)}\nexpected: {want}\n({mismatch})")


# torch.testing.assert_close's defaults: (rtol, atol) per dtype; other dtypes compare exactly.
_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}


def value_mismatch(
    got: torch.Tensor, expected: torch.Tensor, *, rtol: float | None = None, atol: float | None = None
) -> str:
    """ "" if the values of two tensors of one shape agree (within `rtol` and `atol`; by default
    the looser of the two dtypes' tolerances, as torch.testing.assert_close has them; nan equals
    nan), else a line saying how many elements differ and where the largest difference is.

    (Not torch.testing.assert_close itself: from torch 2.14 its first call imports
    torch.distributed.tensor, a second of start-up the katas' tests do not need.)
    """
    if got.device.type == "meta" or expected.device.type == "meta":
        return ""  # no values to compare
    g, e = got.detach().cpu(), expected.detach().cpu()
    defaults = [_TOLERANCES[t.dtype] for t in (g, e) if t.dtype in _TOLERANCES]
    if defaults:
        rtol = max(r for r, _ in defaults) if rtol is None else rtol
        atol = max(a for _, a in defaults) if atol is None else atol
        wide = torch.complex128 if g.is_complex() or e.is_complex() else torch.float64
        g, e = g.to(wide), e.to(wide)
        both_nan = g.isnan() & e.isnan()
        same = (g == e) | both_nan  # equal infinities are equal
        diff = (g - e).abs()
        close = same | (diff <= atol + rtol * e.abs())
    else:
        diff = None
        close = g == e
    if bool(close.all()):
        return ""
    bad = int((~close).sum())
    text = f"{bad} of {close.numel()} elements differ"
    if diff is not None:
        diff = torch.where(close, torch.zeros_like(diff), diff).nan_to_num(nan=float("inf"))
        flat = int(diff.argmax())
        where, rest = [], flat  # the index of that element (torch.unravel_index costs a second on first use)
        for size in reversed(close.shape):
            where.insert(0, rest % size)
            rest //= size
        where = tuple(where)
        text += f"; the largest difference is {float(diff.flatten()[flat]):.3g} at index {where} (rtol={rtol:g}, atol={atol:g})"
    return text


def storage_ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def check_shares_memory(got: torch.Tensor, source: torch.Tensor, called: str, why: str) -> None:
    __tracebackhide__ = True
    check(
        isinstance(got, torch.Tensor) and storage_ptr(got) == storage_ptr(source),
        f"{called} returned a tensor with its own memory; expected it to share memory with the input ({why})",
    )


def check_own_memory(got: torch.Tensor, source: torch.Tensor, called: str, why: str) -> None:
    __tracebackhide__ = True
    check(
        isinstance(got, torch.Tensor) and storage_ptr(got) != storage_ptr(source),
        f"{called} returned a tensor that shares memory with the input; expected an independent copy ({why})",
    )


@contextmanager
def expect_raises(exc_type: type[BaseException], match: str | None, what: str) -> Iterator[pytest.ExceptionInfo]:
    """pytest.raises for learners: if the block returns normally, say so in words.

    (A bare pytest.raises reports only "DID NOT RAISE". Give `match` for RuntimeError and its
    kin: the stubs raise NotImplementedError, a subclass of RuntimeError, so an unmatched
    RuntimeError check would pass against an unfilled stub. `None` only where the exercise
    leaves the message free.)
    """
    __tracebackhide__ = True
    with pytest.raises(exc_type, match=match) as info:
        yield info
        # Reached only when nothing was raised; pytest's Failed is not exc_type, so it escapes.
        matching = f" matching {match!r}" if match else ""
        pytest.fail(f"{what} returned without raising; expected {exc_type.__name__}{matching}", pytrace=False)
    if isinstance(info.value, NotImplementedError) and STUB_TAG in str(info.value):
        # An unfilled stub is "not done yet" (TODO), not a wrong answer that raised the wrong error.
        raise info.value


def spy_on_to(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[bool]]:
    """Record the non_blocking flag of every Tensor.to call, by id() of the tensor moved."""
    calls: dict[int, list[bool]] = {}
    original = torch.Tensor.to

    def spy(self, *args, **kwargs):
        flag = kwargs.get("non_blocking")
        if flag is None:  # to(device, dtype, non_blocking, copy): the first positional bool is non_blocking
            flag = next((a for a in args if isinstance(a, bool)), False)
        calls.setdefault(id(self), []).append(bool(flag))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    return calls
