"""Known-wrong answers (decoys) and known-right alternatives for kata 08 (see dojo/variants.py)."""

import os
from collections import OrderedDict

import torch
from torch import nn

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- ScaleShift


@decoy(
    "plain tensors that require grad: they get gradients, but parameters() is empty",
    cite="https://discuss.pytorch.org/t/how-to-add-a-learnable-parameter-to-a-module/19939",
)
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.weight = torch.ones(num_features, requires_grad=True)
        self.bias = torch.zeros(num_features, requires_grad=True)

    def forward(self, x):
        return x * self.weight + self.bias


@decoy("the bias starts random, like an nn.Linear's, not as zeros")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.randn(num_features))

    def forward(self, x):
        return x * self.weight + self.bias


@decoy("float64 parameters: torch.ones(n, dtype=float64) where the default float32 was asked")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features, dtype=torch.float64))
        self.bias = nn.Parameter(torch.zeros(num_features, dtype=torch.float64))

    def forward(self, x):
        return x * self.weight + self.bias


@decoy("forward reads .data: the output has no graph back to the parameters, so they never train")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        return x * self.weight.data + self.bias.data


@decoy("scales in place: the caller's x is overwritten")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        return x.mul_(self.weight.detach()).add_(self.bias.detach())


@decoy("registered under other names: 'scale' and 'shift', not 'weight' and 'bias'")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_features))
        self.shift = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        return x * self.scale + self.shift


@alternative("register_parameter with explicit names")
class ScaleShift(nn.Module):
    def __init__(self, num_features):
        super().__init__()
        self.register_parameter("weight", nn.Parameter(torch.ones(num_features)))
        self.register_parameter("bias", nn.Parameter(torch.zeros(num_features)))

    def forward(self, x):
        return torch.addcmul(self.bias, x, self.weight)


# ---------------------------------------------------------------- count_parameters


@decoy("the model's own parameters only (model._parameters): nested layers are missed")
def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model._parameters.values() if p.requires_grad or not trainable_only)


@decoy("counts tensors, not values")
def count_parameters(model, trainable_only=False):
    return len([p for p in model.parameters() if p.requires_grad or not trainable_only])


@decoy("walks every module's own parameters: a tied weight is counted once per layer that holds it")
def count_parameters(model, trainable_only=False):
    return sum(
        p.numel() for m in model.modules() for p in m.parameters(recurse=False) if p.requires_grad or not trainable_only
    )


@decoy("counts the state_dict: buffers counted, tied weights twice")
def count_parameters(model, trainable_only=False):
    return sum(t.numel() for t in model.state_dict().values())


@decoy("ignores trainable_only")
def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters())


@decoy("trainable_only the wrong way round: counts the frozen ones")
def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if not (trainable_only and p.requires_grad))


@decoy("returns a tensor (the sum of numel as a torch scalar), not a Python int")
def count_parameters(model, trainable_only=False):
    return torch.tensor([p.numel() for p in model.parameters() if p.requires_grad or not trainable_only]).sum()


@decoy("stops at the first frozen parameter (break instead of continue)")
def count_parameters(model, trainable_only=False):
    total = 0
    for p in model.parameters():
        if trainable_only and not p.requires_grad:
            break
        total += p.numel()
    return total


@alternative("named_parameters, a loop, and a set of ids for shared tensors")
def count_parameters(model, trainable_only=False):
    seen, total = set(), 0
    for m in model.modules():
        for p in m.parameters(recurse=False):
            if id(p) in seen or (trainable_only and not p.requires_grad):
                continue
            seen.add(id(p))
            total += p.numel()
    return total


@alternative("math.prod of each shape")
def count_parameters(model, trainable_only=False):
    import math

    params = [p for p in model.parameters() if p.requires_grad or not trainable_only]
    return int(sum(math.prod(p.shape) for p in params))


# ---------------------------------------------------------------- make_mlp


@decoy(
    "unnamed layers: keys '0.weight', '2.bias'",
    cite="https://discuss.pytorch.org/t/how-to-name-layers-in-sequential/26370",
)
def make_mlp(in_features, hidden_features, out_features):
    return nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU(), nn.Linear(hidden_features, out_features))


@decoy("the names set as attributes afterwards: the layers stay registered as '0', '1', '2' first")
def make_mlp(in_features, hidden_features, out_features):
    model = nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU(), nn.Linear(hidden_features, out_features))
    model.hidden, model.act, model.output = model[0], model[1], model[2]
    return model


@decoy("a plain dict in the wrong order: the model runs output before hidden")
def make_mlp(in_features, hidden_features, out_features):
    return nn.Sequential(
        OrderedDict(
            output=nn.Linear(hidden_features, out_features),
            hidden=nn.Linear(in_features, hidden_features),
            act=nn.ReLU(),
        )
    )


@decoy("a custom Module with the three attributes, not an nn.Sequential")
def make_mlp(in_features, hidden_features, out_features):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(in_features, hidden_features)
            self.act = nn.ReLU()
            self.output = nn.Linear(hidden_features, out_features)

        def forward(self, x):
            return self.output(self.act(self.hidden(x)))

    return MLP()


@decoy("Tanh for the activation")
def make_mlp(in_features, hidden_features, out_features):
    return nn.Sequential(
        OrderedDict(
            hidden=nn.Linear(in_features, hidden_features),
            act=nn.Tanh(),
            output=nn.Linear(hidden_features, out_features),
        )
    )


@decoy("the output layer without a bias")
def make_mlp(in_features, hidden_features, out_features):
    return nn.Sequential(
        OrderedDict(
            hidden=nn.Linear(in_features, hidden_features),
            act=nn.ReLU(),
            output=nn.Linear(hidden_features, out_features, bias=False),
        )
    )


@alternative("an OrderedDict of name -> layer")
def make_mlp(in_features, hidden_features, out_features):
    return nn.Sequential(
        OrderedDict(
            [
                ("hidden", nn.Linear(in_features, hidden_features)),
                ("act", nn.ReLU(inplace=True)),
                ("output", nn.Linear(hidden_features, out_features)),
            ]
        )
    )


# ---------------------------------------------------------------- LayerStack


@decoy(
    "a plain Python list: no parameters, nothing saved, nothing moved",
    cite="https://discuss.pytorch.org/t/when-should-i-use-nn-modulelist-and-when-should-i-use-nn-sequential/5463",
)
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = [nn.Linear(width, width) for _ in range(depth)]

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@decoy("[layer] * depth: one layer repeated, its weights shared by every depth")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(width, width)] * depth)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@decoy("a Sequential with the ReLUs inside: the layers are numbered 0, 2, 4")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        mods = []
        for _ in range(depth):
            mods += [nn.Linear(width, width), nn.ReLU()]
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)


@decoy("no ReLU after the last layer, as in a usual MLP")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


@decoy("registered one by one as layer0, layer1, ...: keys 'layer0.weight', not 'layers.0.weight'")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            self.add_module(f"layer{i}", nn.Linear(width, width))

    def forward(self, x):
        for i in range(self.depth):
            x = torch.relu(getattr(self, f"layer{i}")(x))
        return x


@decoy("ReLU before each layer instead of after")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            x = layer(torch.relu(x))
        return x


@decoy("ReLU in place on the input: the caller's x is clamped")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        x = x.relu_() if not x.requires_grad else x
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@alternative("an nn.Sequential of the Linear layers only, activations in forward")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layers:
            x = nn.functional.relu(layer(x))
        return x


@alternative("a ModuleDict keyed '0', '1', ...: the same keys")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleDict({str(i): nn.Linear(width, width) for i in range(depth)})

    def forward(self, x):
        for layer in self.layers.values():
            x = layer(x).clamp(min=0)
        return x


@alternative("an empty ModuleList appended to in a loop")
class LayerStack(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(nn.Linear(width, width))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).relu()
        return x


# ---------------------------------------------------------------- state_dict_keys


@decoy("parameters only: BatchNorm's running statistics are missed")
def state_dict_keys(model):
    return [name for name, _ in model.named_parameters()]


@decoy("parameters then buffers: a non-persistent buffer listed, a tied weight once, the model's own buffer last")
def state_dict_keys(model):
    return [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]


@decoy("sorted names instead of the saving order")
def state_dict_keys(model):
    return sorted(model.state_dict())


@decoy("returns the dict's keys view, not a list")
def state_dict_keys(model):
    return model.state_dict().keys()


@alternative("unpacks the state_dict into a list")
def state_dict_keys(model):
    return [*model.state_dict(keep_vars=True)]


@alternative("a walk of the module tree: own parameters, own persistent buffers, then children")
def state_dict_keys(model):
    def walk(module, prefix):
        names = [prefix + n for n, p in module._parameters.items() if p is not None]
        names += [
            prefix + n
            for n, b in module._buffers.items()
            if b is not None and n not in module._non_persistent_buffers_set
        ]
        for child_name, child in module._modules.items():
            if child is not None:
                names += walk(child, prefix + child_name + ".")
        return names

    return walk(model, "")


# ---------------------------------------------------------------- RunningCenter


@decoy("a plain tensor attribute: not saved, not moved")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.running_mean = torch.zeros(num_features)

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x - mean


@decoy("an nn.Parameter with requires_grad=False: still in parameters(), so an optimizer may decay it")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.running_mean = nn.Parameter(torch.zeros(num_features), requires_grad=False)

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x - mean


@decoy("a non-persistent buffer: moved, but missing from the state_dict")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features), persistent=False)

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x - mean


@decoy("updates with autograd recording: the buffer gets a grad_fn and keeps every batch's graph")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
        return x - mean


@decoy("momentum the wrong way round: keeps momentum of the old mean and 1 - momentum of the batch")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(self.momentum).add_(mean, alpha=1 - self.momentum)
        return x - mean


@decoy("the momentum fixed at 0.1, whatever the argument")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(0.9).add_(mean, alpha=0.1)
        return x - mean


@decoy("the batch mean computed without a graph: right values, but the gradient skips the mean")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        with torch.no_grad():
            mean = x.mean(0)
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x - mean


@decoy("training subtracts the freshly updated running mean, not the batch's own mean")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(x.mean(0), alpha=self.momentum)
        return x - self.running_mean


@decoy("updates the running mean in eval mode too")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        mean = x.mean(0)
        old = self.running_mean.clone()
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x - mean if self.training else x - old


@decoy("centres x in place: the caller's batch is overwritten")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if not self.training:
            return x.sub_(self.running_mean) if not x.requires_grad else x - self.running_mean
        mean = x.mean(0)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
        return x.sub_(mean.detach()) if not x.requires_grad else x - mean


@alternative("rebinds the buffer to a new tensor computed from a detached mean: still registered, no history")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features))

    def forward(self, x):
        if self.training:
            mean = x.mean(dim=0)
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.detach()
            return x - mean
        return x - self.running_mean


@alternative("lerp_ under no_grad: running + momentum * (mean - running)")
class RunningCenter(nn.Module):
    def __init__(self, num_features, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(num_features, dtype=torch.float32))

    def forward(self, x):
        if not self.training:
            return x - self.running_mean
        mean = x.sum(0) / x.shape[0]
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
        return x - mean


# ---------------------------------------------------------------- predict


@decoy("no_grad only: dropout still drops and BatchNorm uses (and updates) the batch statistics")
def predict(model, x):
    with torch.no_grad():
        return model(x)


@decoy("eval only: the result carries a graph")
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return model(x)
    finally:
        for m, t in was:
            m.training = t


@decoy(
    "model.train() at the end: a frozen BatchNorm is unfrozen, an eval model is switched to training",
    cite="https://discuss.pytorch.org/t/model-eval-vs-with-torch-no-grad/19615",
)
def predict(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out


@decoy("restores only the top-level flag: model.train(was_training) resets every submodule to it")
def predict(model, x):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)


@decoy("no finally: a forward pass that raises leaves the model in eval mode")
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        out = model(x)
    for m, t in was:
        m.training = t
    return out


@decoy("turns autograd off for the caller and never back on")
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    torch.set_grad_enabled(False)
    try:
        return model(x)
    finally:
        for m, t in was:
            m.training = t


@decoy("freezes the parameters instead of stopping recording, then unfreezes them all")
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    model.requires_grad_(False)
    try:
        return model(x)
    finally:
        model.requires_grad_(True)
        for m, t in was:
            m.training = t


@decoy("detaches the output: no graph on the result, but one is built (and x's graph is kept) during the call")
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        out = model(x)
        out.sum().backward() if out.requires_grad else None
        return out.detach()
    finally:
        for m, t in was:
            m.training = t


@decoy(
    "eval mode and a detached result, but no no_grad: the result has no graph, yet the forward pass built one "
    "(and spent its memory) first"
)
def predict(model, x):
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return model(x).detach()
    finally:
        for m, t in was:
            m.training = t


@alternative("inference_mode, and a dict of modes by name")
def predict(model, x):
    before = {name: m.training for name, m in model.named_modules()}
    model.train(False)
    try:
        with torch.inference_mode():
            return model(x)
    finally:
        for name, m in model.named_modules():
            m.train(before[name]) if not list(m.children()) else setattr(m, "training", before[name])


@alternative("a decorator no_grad on an inner function, and modes restored per module with m.train(flag)")
def predict(model, x):
    @torch.no_grad()
    def run():
        return model(x)

    flags = [(m, m.training) for m in model.modules()]
    for m, _ in flags:
        m.training = False
    try:
        return run()
    finally:
        for m, flag in flags:
            m.training = flag


@alternative("nothing to record: parameters frozen and x detached for the call, each flag restored after")
def predict(model, x):
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        return model(x.detach())
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, t in modes:
            m.training = t


# ---------------------------------------------------------------- save_weights


@decoy(
    "saves the model object: only weights_only=False can load it, and only where its class imports",
    cite="https://github.com/pytorch/pytorch/issues/52181",
)
def save_weights(model, path):
    torch.save(model, path)


@decoy("the parameters only: the BatchNorm's running statistics are not saved")
def save_weights(model, path):
    torch.save(dict(model.named_parameters()), path)


@decoy("parameters and every buffer: a non-persistent buffer is saved, a tied weight under one name only")
def save_weights(model, path):
    torch.save({**dict(model.named_parameters()), **dict(model.named_buffers())}, path)


@decoy("switches the model to eval mode before saving, and leaves it there")
def save_weights(model, path):
    model.eval()
    torch.save(model.state_dict(), path)


@alternative("an open binary file handle, and detached CPU copies")
def save_weights(model, path):
    with open(os.fspath(path), "wb") as f:
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, f)


@alternative("keep_vars=True: the parameters themselves (nn.Parameter loads with weights_only)")
def save_weights(model, path):
    torch.save(model.state_dict(keep_vars=True), path)


# ---------------------------------------------------------------- load_weights


@decoy(
    "updates a new dict: the model does not change",
    cite="https://discuss.pytorch.org/t/how-to-load-part-of-pre-trained-model/1113",
)
def load_weights(model, path):
    model.state_dict().update(torch.load(path, map_location="cpu", weights_only=True))
    return model


@decoy("weights_only=False: a pickled model object is loaded (its code run)")
def load_weights(model, path):
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, nn.Module):
        state = state.state_dict()
    model.load_state_dict(state)
    return model


@decoy("strict=False: missing layers stay at their random initial values, silently")
def load_weights(model, path):
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=False)
    return model


@decoy("no map_location: a checkpoint saved on a GPU fails to load on a machine without one")
def load_weights(model, path):
    model.load_state_dict(torch.load(path, weights_only=True))
    return model


@decoy("assign=True: the model's parameters are replaced, an optimizer built before holds the old ones")
def load_weights(model, path):
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), assign=True)
    return model


@decoy("returns what load_state_dict returns (the missing/unexpected keys), not the model")
def load_weights(model, path):
    return model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


@alternative("map_location to the model's own device")
def load_weights(model, path):
    first = next(iter(model.state_dict().values()), None)
    device = first.device if first is not None else "cpu"
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True), strict=True)
    return model


@alternative("a map_location function that keeps every storage on the CPU")
def load_weights(model, path):
    state = torch.load(os.fspath(path), map_location=lambda storage, location: storage, weights_only=True)
    model.load_state_dict(state)
    return model
