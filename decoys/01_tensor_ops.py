"""Known-wrong answers (decoys) and known-right alternatives for kata 01 (see dojo/variants.py)."""

import torch

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- zeros_with_dtype


@decoy("forgets the device: torch.zeros makes its tensor on the default device")
def zeros_with_dtype(x, dtype):
    return torch.zeros(x.shape, dtype=dtype)


@decoy("ignores the requested dtype: zeros_like alone keeps x's")
def zeros_with_dtype(x, dtype):
    return torch.zeros_like(x)


@decoy("multiplies x by 0: nan and inf stay nan, and the result carries x's graph")
def zeros_with_dtype(x, dtype):
    return (x * 0).to(dtype)


@decoy("zeroes the caller's x in place (and returns x itself when the dtype already matches)")
def zeros_with_dtype(x, dtype):
    return x.zero_().to(dtype)


@alternative("new_zeros keeps the device and takes a dtype")
def zeros_with_dtype(x, dtype):
    return x.new_zeros(x.shape, dtype=dtype)


@alternative("torch.zeros with x's device passed explicitly")
def zeros_with_dtype(x, dtype):
    return torch.zeros(x.shape, dtype=dtype, device=x.device)


@alternative("full_like with the fill value 0")
def zeros_with_dtype(x, dtype):
    return torch.full_like(x, 0, dtype=dtype)


# ---------------------------------------------------------------- ones_like_template


@decoy("builds from the shape alone: float32 ones on the default device")
def ones_like_template(template, shape):
    return torch.ones(shape)


@decoy("copies the dtype but forgets the device")
def ones_like_template(template, shape):
    return torch.ones(shape, dtype=template.dtype)


@decoy("ones_like keeps the template's shape; stretching it to the new shape only works when they broadcast")
def ones_like_template(template, shape):
    return torch.ones_like(template).expand(shape)


@decoy("resizes and fills the caller's template in place instead of making a new tensor")
def ones_like_template(template, shape):
    return template.detach().resize_(shape).fill_(1)


@alternative("new_full with the fill value 1")
def ones_like_template(template, shape):
    return template.new_full(shape, 1)


@alternative("torch.ones with the template's dtype and device passed explicitly")
def ones_like_template(template, shape):
    return torch.ones(shape, dtype=template.dtype, device=template.device)


# ---------------------------------------------------------------- add_into


@decoy("rebinds the local name: the caller's out never changes")
def add_into(x, y, out):
    out = x + y
    return out


@decoy("sums into out with +=: whatever out held before is added to the result")
def add_into(x, y, out):
    out += x + y
    return out


@decoy("fills out but forgets to return it: the caller gets None")
def add_into(x, y, out):
    out[...] = x + y


@decoy("assigns out.data: out now points at new memory, and the caller's larger buffer never sees the sum")
def add_into(x, y, out):
    out.data = x + y
    return out


@decoy("sums into x first, so the caller's x changes as well")
def add_into(x, y, out):
    return out.copy_(x.add_(y))


@alternative("copies the sum into out's memory")
def add_into(x, y, out):
    out.copy_(x + y)
    return out


@alternative("assigns to every element of out with out[...]")
def add_into(x, y, out):
    out[...] = x + y
    return out


@alternative("copies x into out, then adds y to out in place")
def add_into(x, y, out):
    return out.copy_(x).add_(y)


# ---------------------------------------------------------------- add_in_place


@decoy("x = x + y makes a new tensor: the caller's x is unchanged")
def add_in_place(x, y):
    x = x + y
    return x


@decoy("the method without the underscore returns a new tensor and leaves x alone")
def add_in_place(x, y):
    return x.add(y)


@decoy("adds in place but forgets to return x: the caller gets None")
def add_in_place(x, y):
    x.add_(y)


@decoy("assigns x.data: x gets new memory, and the matrix x was a row of never changes")
def add_in_place(x, y):
    x.data = x + y
    return x


@decoy("slice assignment x[:] fails on a 0-d running total")
def add_in_place(x, y):
    x[:] = x + y
    return x


@alternative("the augmented assignment += is in place for tensors")
def add_in_place(x, y):
    x += y
    return x


@alternative("torch.add with out=x")
def add_in_place(x, y):
    return torch.add(x, y, out=x)


@alternative("copies the sum back into x's memory")
def add_in_place(x, y):
    return x.copy_(x + y)


# ---------------------------------------------------------------- column


@decoy("x[j] is row j, not column j")
def column(x, j):
    return x[j]


@decoy("a slice keeps the dimension: shape (rows, 1) instead of (rows,)")
def column(x, j):
    return x[:, j : j + 1]


@decoy("squeeze() after slicing drops the row dimension too when there is one row")
def column(x, j):
    return x[:, j : j + 1].squeeze()


@decoy("the slice j:j+1 is empty for j = -1")
def column(x, j):
    return x[:, j : j + 1].flatten()


@decoy("reads the column out of the flat memory: right for a fresh matrix, an error for a transposed one")
def column(x, j):
    cols = x.shape[1]
    return x.view(-1)[j % cols :: cols]


@alternative("select along dimension 1")
def column(x, j):
    return x.select(1, j)


@alternative("row j of the transpose")
def column(x, j):
    return x.t()[j]


@alternative("a copy instead of a view")
def column(x, j):
    return x[:, j].clone()


@alternative("a loop over the rows, stacked")
def column(x, j):
    return torch.stack([row[j] for row in x])


# ---------------------------------------------------------------- flatten_rows


@decoy(
    "view(-1) flattens the batch dimension away too",
    cite="https://github.com/clcarwin/convert_torch_to_pytorch/pull/1",
)
def flatten_rows(x):
    return x.view(-1)


@decoy(
    "view(1, -1) puts the whole batch in one row: right only for a batch of one",
    cite="https://github.com/udacity/P1_Facial_Keypoints/issues/2",
)
def flatten_rows(x):
    return x.view(1, -1)


@decoy(
    "view refuses a permuted (non-contiguous) tensor",
    cite="https://www.marioraach.de/en/blog/pytorch-transpose-view",
)
def flatten_rows(x):
    return x.view(x.size(0), -1)


@decoy("hard-codes four dimensions (N, C, H, W)")
def flatten_rows(x):
    return x.reshape(x.shape[0], x.shape[1] * x.shape[2] * x.shape[3])


@alternative("torch.flatten from dimension 1")
def flatten_rows(x):
    return torch.flatten(x, start_dim=1)


@alternative("a loop that flattens each row and stacks them")
def flatten_rows(x):
    return torch.stack([row.flatten() for row in x])


@alternative("contiguous() first, then view")
def flatten_rows(x):
    return x.contiguous().view(len(x), -1)


# ---------------------------------------------------------------- add_batch_dim


@decoy("unsqueeze_ (with the underscore) reshapes the caller's image as well")
def add_batch_dim(image):
    return image.unsqueeze_(0)


@decoy("inserts the new dimension after the channels: (C, 1, H, W)")
def add_batch_dim(image):
    return image.unsqueeze(1)


@decoy("inserts the new dimension at the end: (C, H, W, 1)")
def add_batch_dim(image):
    return image.unsqueeze(-1)


@decoy("reshape(1, -1) flattens the image into one row")
def add_batch_dim(image):
    return image.reshape(1, -1)


@alternative("indexing with None")
def add_batch_dim(image):
    return image[None]


@alternative("stacks a list of one image")
def add_batch_dim(image):
    return torch.stack([image])


@alternative("reshape with the leading 1 spelled out")
def add_batch_dim(image):
    return image.reshape(1, *image.shape)


# ---------------------------------------------------------------- to_python_number


@decoy("float() turns an integer count into a float")
def to_python_number(t):
    return float(t)


@decoy("tolist() of a (1, 1) tensor is a nested list, and it never refuses many elements")
def to_python_number(t):
    return t.tolist()


@decoy("sums first: a batch of losses silently becomes one number")
def to_python_number(t):
    return t.sum().item()


@decoy("picks the first element: a batch of losses silently becomes its first")
def to_python_number(t):
    return t.flatten()[0].item()


@decoy("squeeze().tolist() gives a list, not an error, for many elements")
def to_python_number(t):
    return t.squeeze().tolist()


@decoy("indexing a NumPy array gives a NumPy scalar, not a built-in number")
def to_python_number(t):
    return t.detach().cpu().numpy().reshape(-1)[0]


@alternative("reshapes to 0-d (an error unless there is one element), then tolist()")
def to_python_number(t):
    return t.reshape(()).tolist()


@alternative("checks the count itself, then converts through NumPy's item()")
def to_python_number(t):
    if t.numel() != 1:
        raise RuntimeError(f"expected one element, got {t.numel()}")
    return t.detach().cpu().numpy().item()


# ---------------------------------------------------------------- predicted_classes


@decoy(
    "argmax without dim: one index into the flattened table",
    cite="https://github.com/Zasder3/train-CLIP/issues/6",
)
def predicted_classes(scores):
    return scores.argmax()


@decoy("reduces over dimension 0: for each class, the sample that scores highest")
def predicted_classes(scores):
    return scores.argmax(dim=0)


@decoy("max(dim=1)[0] is the largest score of each row, not its index")
def predicted_classes(scores):
    return scores.max(dim=1)[0]


@decoy("squeeze() after keepdim drops the batch dimension of a batch of one")
def predicted_classes(scores):
    return scores.argmax(dim=1, keepdim=True).squeeze()


@decoy("sorts each row and takes the last index: ties go to the largest index")
def predicted_classes(scores):
    return scores.argsort(dim=1)[:, -1]


@alternative("the indices of max(dim=1)")
def predicted_classes(scores):
    return scores.max(dim=1).indices


@alternative("torch.argmax over the last dimension")
def predicted_classes(scores):
    return torch.argmax(scores, dim=-1)


@alternative("a Python loop: max over each row's column indices (the first maximum wins)")
def predicted_classes(scores):
    winners = [max(range(row.numel()), key=lambda c, row=row: float(row[c])) for row in scores]
    return torch.tensor(winners, dtype=torch.int64, device=scores.device)


# ---------------------------------------------------------------- pairwise_sums


@decoy("a + b pairs the vectors element by element (and fails when N != M)")
def pairwise_sums(a, b):
    return a + b


@decoy("a as a row and b as a column: the table comes out transposed, (M, N)")
def pairwise_sums(a, b):
    return a[None, :] + b[:, None]


@decoy("a loop into torch.zeros(N, M): float32 on the default device, whatever a and b are")
def pairwise_sums(a, b):
    table = torch.zeros(len(a), len(b))
    for i in range(len(a)):
        table[i] = a[i] + b
    return table


@decoy("unsqueeze_ (with the underscore) turns the caller's a into a column")
def pairwise_sums(a, b):
    return a.unsqueeze_(1) + b


@decoy("squeeze() at the end drops the row dimension when N is 1")
def pairwise_sums(a, b):
    return (a[:, None] + b[None, :]).squeeze()


@alternative("unsqueeze(1) on a, b broadcast as it is")
def pairwise_sums(a, b):
    return a.unsqueeze(1) + b


@alternative("a loop over a's elements, stacked into rows")
def pairwise_sums(a, b):
    return torch.stack([ai + b for ai in a])


@alternative("expand both to (N, M) explicitly")
def pairwise_sums(a, b):
    n, m = len(a), len(b)
    return a.reshape(n, 1).expand(n, m) + b.expand(n, m)
