"""Known-wrong answers (decoys) and known-right alternatives for kata 14 (see dojo/variants.py)."""

import numpy as np
import torch
import torch.nn.functional as F

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- make_batch


@decoy(
    "cat joins the samples along their own first dimension: (N * C, H, W), and a batch of one is a bare image",
    cite="https://github.com/WenjieDu/BenchPOTS/issues/22",
)
def make_batch(samples):
    return torch.cat(list(samples))


@decoy("stack, then squeeze() for tidiness: a batch of one loses its batch dimension")
def make_batch(samples):
    return torch.stack(list(samples)).squeeze()


@decoy("stacks along dim 1: (C, N, H, W), the batch dimension in the channels' place")
def make_batch(samples):
    return torch.stack(list(samples), dim=1)


@decoy("torch.tensor(list of tensors) refuses samples with more than one element")
def make_batch(samples):
    return torch.tensor([s.tolist() for s in samples])


@decoy("a preallocated batch with torch.empty: float32 on the default device, whatever the samples are")
def make_batch(samples):
    out = torch.empty((len(samples), *samples[0].shape))
    for i, s in enumerate(samples):
        out[i] = s
    return out


@alternative("cat of samples that each got a batch dimension of one")
def make_batch(samples):
    return torch.cat([s.unsqueeze(0) for s in samples], dim=0)


@alternative("a loop into a batch preallocated with the samples' dtype and device (new_empty)")
def make_batch(samples):
    first = samples[0]
    out = first.new_empty((len(samples), *first.shape))
    for i, s in enumerate(samples):
        out[i] = s
    return out


# ---------------------------------------------------------------- drop_channel_dim


@decoy(
    "squeeze() with no dim: a batch of one, or masks one pixel tall, lose those dimensions too",
    cite="https://github.com/NVIDIA/tacotron2/pull/303",
)
def drop_channel_dim(masks):
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f"expected (N, 1, H, W), got {tuple(masks.shape)}")
    return masks.squeeze()


@decoy("squeeze(1) without a check: (N, 3, H, W) comes back unchanged, no error")
def drop_channel_dim(masks):
    return masks.squeeze(1)


@decoy("checks the channel count but not the rank: a 3-D (N, 1, W) loses its dimension 1")
def drop_channel_dim(masks):
    if masks.shape[1] != 1:
        raise ValueError(f"expected one channel, got {tuple(masks.shape)}")
    return masks.squeeze(1)


@decoy("reshape(-1, H, W): three channels become three times as many masks, silently")
def drop_channel_dim(masks):
    return masks.reshape(-1, masks.shape[-2], masks.shape[-1])


@alternative("indexes channel 0 after checking the shape (an integer index drops that dimension, as a view)")
def drop_channel_dim(masks):
    if masks.ndim != 4 or masks.size(1) != 1:
        raise ValueError(f"expected masks of shape (N, 1, H, W), got {tuple(masks.shape)}")
    return masks[:, 0]


# ---------------------------------------------------------------- image_to_tensor


@decoy("reshape to (C, H, W) pours the pixels into the new shape instead of moving the channel axis")
def image_to_tensor(images):
    t = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    *lead, h, w, c = t.shape
    return t.reshape(*lead, c, h, w).float() / 255


@decoy("permute(2, 1, 0): (C, W, H), which only a square image hides; and no batch")
def image_to_tensor(images):
    t = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return t.permute(2, 1, 0).float() / 255


@decoy(
    "permute(2, 0, 1) written for one image: a batch raises 'number of dimensions in the tensor input does not match'"
)
def image_to_tensor(images):
    t = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return t.permute(2, 0, 1).float() / 255


@decoy("casts to float but forgets to scale: values up to 255.0")
def image_to_tensor(images):
    t = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return t.movedim(-1, -3).float()


@decoy("divides in NumPy by 255.0: float64, which a float32 model refuses")
def image_to_tensor(images):
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.moveaxis(images, -1, -3) / 255.0)
    return images.movedim(-1, -3).double() / 255


@decoy(
    "torch.from_numpy straight on the array: a BGR->RGB view img[..., ::-1] raises 'negative strides'",
    cite="https://github.com/open-mmlab/mmsegmentation/issues/1628",
)
def image_to_tensor(images):
    t = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
    return t.movedim(-1, -3).float() / 255


@decoy("divides by 256 (a power of two 'for speed'): 255 becomes 0.996")
def image_to_tensor(images):
    t = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return t.movedim(-1, -3).float() / 256


@decoy("torch.tensor(images) for tensors too: the copy lands on the CPU")
def image_to_tensor(images):
    t = torch.tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images.cpu()
    return t.movedim(-1, -3).float() / 255


@alternative("NumPy moves the axes and converts; a tensor is permuted by its rank; mul by 1/255")
def image_to_tensor(images):
    if isinstance(images, np.ndarray):
        order = (2, 0, 1) if images.ndim == 3 else (0, 3, 1, 2)
        return torch.from_numpy(images.transpose(order).astype(np.float32)).mul(1 / 255)
    order = (2, 0, 1) if images.dim() == 3 else (0, 3, 1, 2)
    return images.permute(*order).to(torch.float32).mul(1 / 255)


# ---------------------------------------------------------------- normalize_rows


@decoy(
    "sum(dim=-1) without keepdim: the (N,) totals line up with the columns; runs (wrongly) for square matrices",
    cite="https://github.com/NVIDIA/cuml/issues/5360",
)
def normalize_rows(x):
    return x / x.sum(dim=-1)


@decoy("column totals (dim 0, keepdim): each column adds up to 1, not each row")
def normalize_rows(x):
    return x / x.sum(dim=0, keepdim=True)


@decoy("dim=1 instead of the last dim: right for matrices, wrong for a single row or a stack of matrices")
def normalize_rows(x):
    return x / x.sum(dim=1, keepdim=True)


@decoy("divides in place: the caller's x is normalised too")
def normalize_rows(x):
    return x.div_(x.sum(dim=-1, keepdim=True))


@decoy("softmax: the rows add up to 1, but the values are exp(x) / total, not x / total")
def normalize_rows(x):
    return torch.softmax(x, dim=-1)


@decoy("divides by each row's length (L2 norm), not its total: unit vectors, rows that do not add up to 1")
def normalize_rows(x):
    return F.normalize(x, dim=-1)


@alternative("the totals indexed with None to a trailing dimension of 1")
def normalize_rows(x):
    return x / x.sum(-1)[..., None]


@alternative("F.normalize with p=1: the L1 norm of non-negative rows is their total")
def normalize_rows(x):
    return F.normalize(x, p=1, dim=-1)


# ---------------------------------------------------------------- regression_loss


@decoy(
    "F.mse_loss(pred, target) on (N, 1) and (N,): broadcasts to (N, N) (and warns)",
    cite="https://github.com/deepset-ai/FARM/issues/229",
)
def regression_loss(pred, target):
    return F.mse_loss(pred, target)


@decoy("the formula by hand on (N, 1) and (N,): the same (N, N) broadcast, and not even a warning")
def regression_loss(pred, target):
    return ((pred - target) ** 2).mean()


@decoy("pred.squeeze() without a dim: a batch of one becomes 0-d against a (1,) target, and warns")
def regression_loss(pred, target):
    return F.mse_loss(pred.squeeze(), target)


@decoy("returns loss.item(): a Python float, no graph to backpropagate")
def regression_loss(pred, target):
    return F.mse_loss(pred.squeeze(1), target).item()


@decoy("reduction='sum': N times the mean")
def regression_loss(pred, target):
    return F.mse_loss(pred.squeeze(1), target, reduction="sum")


@alternative("gives the target a column dimension instead, (N, 1) against (N, 1)")
def regression_loss(pred, target):
    return F.mse_loss(pred, target.unsqueeze(1))


@alternative("the formula by hand on pred[:, 0], the column as a vector")
def regression_loss(pred, target):
    return ((pred[:, 0] - target) ** 2).mean()


@alternative("view_as: the prediction in the target's shape")
def regression_loss(pred, target):
    return torch.nn.MSELoss()(pred.view_as(target), target)


# ---------------------------------------------------------------- cross_entropy_target


@decoy("keeps float class numbers as they are: 'expected target dtype to be Long or Byte, but got Float'")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        return labels.float().argmax(dim=1).to(logits.device)
    return labels.reshape(n).to(logits.device)


@decoy("casts class numbers with .int(): int32, which cross-entropy refuses")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.device, logits.dtype)
        labels = is_one.long().argmax(1)
    return labels.reshape(n).int().to(logits.device)


@decoy(
    "one-hot rows read with argmax(dim=0): the columns' answers, wrong length unless N == C",
    cite="https://github.com/IGNF/FLAIR-1/issues/9",
)
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.device, logits.dtype)
        return is_one.long().argmax(0).to(logits.device)
    return labels.reshape(n).long().to(logits.device)


@decoy("passes one-hot rows on as probabilities: the loss value is right, but the target is not class indices")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        return labels.to(logits.device, logits.dtype)
    return labels.reshape(n).long().to(logits.device)


@decoy("takes argmax of soft labels too: the probabilities are thrown away, the loss changes")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        return labels.float().argmax(dim=1).to(logits.device)
    return labels.reshape(n).long().to(logits.device)


@decoy("tells one-hot from soft by 'each row adds up to 1': soft labels add up to 1 as well")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        if (labels.double().sum(1) == 1).all():
            return labels.float().argmax(dim=1).to(logits.device)
        return labels.to(logits.device, logits.dtype)
    return labels.reshape(n).long().to(logits.device)


@decoy("looks at the first row only to decide one-hot or soft")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        first = labels[0]
        if ((first == 0) | (first == 1)).all() and (first == 1).sum() == 1:
            return labels.float().argmax(dim=1).to(logits.device)
        return labels.to(logits.device, logits.dtype)
    return labels.reshape(n).long().to(logits.device)


@decoy("soft labels keep their own dtype: float64 probabilities give a float64 loss for float32 logits")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.device)
        labels = is_one.long().argmax(1)
    return labels.reshape(n).long().to(logits.device)


@decoy("forgets the device: the target stays on the CPU while the logits are on the GPU")
def cross_entropy_target(labels, logits):
    n, c = logits.shape
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.dtype)
        labels = is_one.long().argmax(1)
    return labels.reshape(n).long()


@decoy("a column (N, 1) is cast but not flattened: '0D or 1D target tensor expected, multi-target not supported'")
def cross_entropy_target(labels, logits):
    c = logits.shape[1]
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.device, logits.dtype)
        labels = is_one.long().argmax(1)
    return labels.long().to(logits.device)


@decoy("flattens a column with squeeze(): a batch of one becomes a 0-d target")
def cross_entropy_target(labels, logits):
    c = logits.shape[1]
    if labels.dim() == 2 and labels.shape[1] == c:
        is_one = labels == 1
        if not (((labels == 0) | is_one).all() and (is_one.sum(1) == 1).all()):
            return labels.to(logits.device, logits.dtype)
        labels = is_one.long().argmax(1)
    return labels.squeeze().long().to(logits.device)


@alternative(
    "dispatch on the number of dimensions; one-hot found by its row maxima and totals; nonzero for the indices"
)
def cross_entropy_target(labels, logits):
    device = logits.device
    if labels.ndim == 1:
        return labels.to(device=device, dtype=torch.long)
    if labels.shape[1] == 1:
        return labels[:, 0].to(device=device, dtype=torch.long)
    values = labels.double()
    one_hot = bool(torch.all((values == 0) | (values == 1))) and bool(torch.all(values.sum(dim=1) == 1))
    if one_hot:
        return values.nonzero()[:, 1].to(device=device, dtype=torch.long)
    return labels.to(device=device, dtype=logits.dtype)


# ---------------------------------------------------------------- predict_numpy


@decoy(
    "model.double(): the output matches the data, but the caller's model is now float64",
    cite="https://github.com/cornellius-gp/gpytorch/issues/2003",
)
def predict_numpy(model, batch):
    return model.double()(torch.from_numpy(batch))


@decoy("torch.from_numpy keeps float64: 'mat1 and mat2 must have the same dtype, but got Double and Float'")
def predict_numpy(model, batch):
    device = next(model.parameters()).device
    return model(torch.from_numpy(batch).to(device))


@decoy(
    "hard-codes .float(): right for a float32 model, wrong for any other",
    cite="https://github.com/OUCMachineLearning/OUCML/issues/24",
)
def predict_numpy(model, batch):
    device = next(model.parameters()).device
    return model(torch.from_numpy(batch).float().to(device))


@decoy("converts the dtype but forgets the device: a model on the GPU gets a CPU batch")
def predict_numpy(model, batch):
    dtype = next(model.parameters()).dtype
    return model(torch.tensor(batch, dtype=dtype))


@alternative("from_numpy, then .to(p) takes dtype and device from a parameter at once")
def predict_numpy(model, batch):
    p = next(iter(model.parameters()))
    return model(torch.from_numpy(batch).to(p))


@alternative("NumPy converts the dtype first (astype), then torch moves it; under no_grad")
def predict_numpy(model, batch):
    p = next(model.parameters())
    numpy_dtype = torch.empty(0, dtype=p.dtype).numpy().dtype
    with torch.no_grad():
        return model(torch.from_numpy(batch.astype(numpy_dtype)).to(p.device))


# ---------------------------------------------------------------- clashing_dims


@decoy("aligns the shapes on the left: (4, 3) + (4,) looks fine, (4, 3) + (3,) looks wrong")
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)
    if op == "broadcast":
        return [(k, k) for k in range(min(len(a), len(b))) if a[k] != b[k] and 1 not in (a[k], b[k])]
    i, j = len(a) - 1, (0 if len(b) == 1 else len(b) - 2)
    out = [] if a[i] == b[j] else [(i, j)]
    if len(a) >= 2 and len(b) >= 2:
        out += [(k, k) for k in range(min(len(a), len(b)) - 2) if a[k] != b[k] and 1 not in (a[k], b[k])]
    return out


@decoy("forgets that a size 1 stretches: (N, 1) + (N,) reported as a clash")
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)

    def differ(x, y):
        return [(len(x) - k, len(y) - k) for k in range(1, min(len(x), len(y)) + 1) if x[-k] != y[-k]]

    if op == "broadcast":
        return differ(a, b)
    i, j = len(a) - 1, (0 if len(b) == 1 else len(b) - 2)
    out = [] if a[i] == b[j] else [(i, j)]
    if len(a) >= 2 and len(b) >= 2:
        out += differ(a[:-2], b[:-2])
    return out


@decoy("matmul compares the last dimension of a with the last of b")
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)

    def _broadcast_from_the_right(x, y):
        return [
            (len(x) - k, len(y) - k)
            for k in range(1, min(len(x), len(y)) + 1)
            if x[-k] != y[-k] and 1 not in (x[-k], y[-k])
        ]

    if op == "broadcast":
        return _broadcast_from_the_right(a, b)
    out = [] if a[-1] == b[-1] else [(len(a) - 1, len(b) - 1)]
    if len(a) >= 2 and len(b) >= 2:
        out += _broadcast_from_the_right(a[:-2], b[:-2])
    return out


@decoy("lets a size 1 stretch in the contracted dimension of matmul too: (2, 1) @ (3, 4) looks fine")
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)

    def _broadcast_from_the_right(x, y):
        return [
            (len(x) - k, len(y) - k)
            for k in range(1, min(len(x), len(y)) + 1)
            if x[-k] != y[-k] and 1 not in (x[-k], y[-k])
        ]

    if op == "broadcast":
        return _broadcast_from_the_right(a, b)
    i, j = len(a) - 1, (0 if len(b) == 1 else len(b) - 2)
    out = [] if a[i] == b[j] or 1 in (a[i], b[j]) else [(i, j)]
    if len(a) >= 2 and len(b) >= 2:
        out += _broadcast_from_the_right(a[:-2], b[:-2])
    return out


@decoy("matmul checks only the contracted dimensions: batch dimensions that clash go unnoticed")
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)

    def _broadcast_from_the_right(x, y):
        return [
            (len(x) - k, len(y) - k)
            for k in range(1, min(len(x), len(y)) + 1)
            if x[-k] != y[-k] and 1 not in (x[-k], y[-k])
        ]

    if op == "broadcast":
        return _broadcast_from_the_right(a, b)
    i, j = len(a) - 1, (0 if len(b) == 1 else len(b) - 2)
    return [] if a[i] == b[j] else [(i, j)]


@decoy('counts the dimensions from the right (-1, -1), as some error messages do ("at -1"): not the indices asked for')
def clashing_dims(op, a_shape, b_shape):
    a, b = tuple(a_shape), tuple(b_shape)

    def _broadcast_from_the_right(x, y):
        return [
            (len(x) - k, len(y) - k)
            for k in range(1, min(len(x), len(y)) + 1)
            if x[-k] != y[-k] and 1 not in (x[-k], y[-k])
        ]

    if op == "broadcast":
        return [(i - len(a), j - len(b)) for i, j in _broadcast_from_the_right(a, b)]
    i, j = len(a) - 1, (0 if len(b) == 1 else len(b) - 2)
    out = [] if a[i] == b[j] else [(i - len(a), j - len(b))]
    if len(a) >= 2 and len(b) >= 2:
        out += [(x - len(a), y - len(b)) for x, y in _broadcast_from_the_right(a[:-2], b[:-2])]
    return out


@alternative("itertools.zip_longest over the reversed shapes, padded with 1s; matmul by cases of rank")
def clashing_dims(op, a_shape, b_shape):
    from itertools import zip_longest

    a, b = list(a_shape), list(b_shape)

    def batch(x, y):
        out = []
        for k, (p, q) in enumerate(zip_longest(reversed(x), reversed(y), fillvalue=1)):
            if p != q and p != 1 and q != 1:
                out.append((len(x) - 1 - k, len(y) - 1 - k))
        return out

    if op == "broadcast":
        return batch(a, b)
    if len(a) == 1 and len(b) == 1:
        return [] if a[0] == b[0] else [(0, 0)]
    if len(b) == 1:
        return [] if a[-1] == b[0] else [(len(a) - 1, 0)]
    if len(a) == 1:
        return [] if a[0] == b[-2] else [(0, len(b) - 2)]
    inner = [] if a[-1] == b[-2] else [(len(a) - 1, len(b) - 2)]
    return batch(a[:-2], b[:-2]) + inner
