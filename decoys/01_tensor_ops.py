"""Known-wrong answers (decoys) and known-right alternatives for kata 01 (see dojo/variants.py)."""

import torch

from dojo.variants import alternative, decoy


@decoy("forgets the device: torch.zeros makes its tensor on the default device")
def zeros_with_dtype(x, dtype):
    return torch.zeros(x.shape, dtype=dtype)


@alternative("new_zeros keeps the device and takes a dtype")
def zeros_with_dtype(x, dtype):
    return x.new_zeros(x.shape, dtype=dtype)


@decoy("rebinds the local name: the caller's out never changes")
def add_into(x, y, out):
    out = x + y
    return out
