"""Known-wrong answers (decoys) and known-right alternatives for kata 13 (see dojo/variants.py)."""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- freeze_all


@decoy("sets an attribute on the module object: every parameter still requires grad")
def freeze_all(model):
    model.requires_grad = False
    return model


@decoy("eval() as well, 'to freeze it properly': the model's training mode changes")
def freeze_all(model):
    model.eval()
    return model.requires_grad_(False)


@decoy("freezes the children only: a parameter registered on the model itself stays trainable")
def freeze_all(model):
    for child in model.children():
        child.requires_grad_(False)
    return model


@decoy("replaces each parameter by a new frozen Parameter: an optimizer built earlier holds tensors the model dropped")
def freeze_all(model):
    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            setattr(module, name, nn.Parameter(p.detach(), requires_grad=False))
    return model


@decoy("freezes a copy and returns it: the caller's model is unchanged")
def freeze_all(model):
    return copy.deepcopy(model).requires_grad_(False)


@decoy("'restores' the mode with train(was): a mix of modes becomes the model's own mode everywhere")
def freeze_all(model):
    was = model.training
    model.requires_grad_(False)
    return model.train(was)


@decoy("clears the gradients while freezing: the stored .grad was not its to discard")
def freeze_all(model):
    for p in model.parameters():
        p.grad = None
        p.requires_grad = False
    return model


@alternative("a loop setting the flag on each parameter")
def freeze_all(model):
    for p in model.parameters():
        p.requires_grad = False
    return model


@alternative("detach_() on each parameter: the same object, detached in place, no longer requires grad")
def freeze_all(model):
    for _, p in model.named_parameters():
        p.detach_()
    return model


@alternative("apply() with requires_grad_(False) on every module: each module's own parameters, once more")
def freeze_all(model):
    model.apply(lambda m: m.requires_grad_(False))
    return model


# ---------------------------------------------------------------- replace_head


@decoy("a width copied from a ResNet-18 tutorial: 512 fits one backbone only")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(512, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    return model


@decoy("a bare nn.Linear: on the CPU in float32, whatever the model's device and dtype")
def replace_head(model, num_classes):
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@decoy("the dtype but not the device: a head on the CPU under a model on the GPU (or on meta)")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.in_features, num_classes, dtype=old.weight.dtype)
    return model


@decoy("the device but not the dtype: a float32 head under a float64 model")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.in_features, num_classes).to(old.weight.device)
    return model


@decoy("changes out_features on the old layer: its weight keeps 1000 rows")
def replace_head(model, num_classes):
    model.fc.out_features = num_classes
    return model


@decoy("a head without a bias")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.in_features, num_classes, bias=False).to(old.weight)
    return model


@decoy("in_features read from the weight's first dimension, which is the old number of classes")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.weight.shape[0], num_classes).to(old.weight)
    return model


@decoy("freezes the backbone on the way: a block the caller had unfrozen is frozen again")
def replace_head(model, num_classes):
    old = model.fc
    model.requires_grad_(False)
    model.fc = nn.Linear(old.in_features, num_classes).to(old.weight)
    return model


@decoy(
    "a dropout-and-linear head in a Sequential, as in many tutorials: not one linear layer with a weight and a bias",
    cite="https://discuss.pytorch.org/t/what-does-param-requires-grad-false-or-true-do-in-the-pretrained-model/99026",
)
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(old.in_features, num_classes)).to(old.weight)
    return model


@decoy("keeps the old head's first rows as the new weight: a view of the old head's memory, not a head of its own")
def replace_head(model, num_classes):
    old = model.fc
    new = nn.Linear(old.in_features, num_classes).to(old.weight)
    new.weight = nn.Parameter(old.weight.detach()[:num_classes])
    model.fc = new
    return model


@alternative("builds the layer, then moves it to the old weight's device and dtype with .to(tensor)")
def replace_head(model, num_classes):
    old = model.fc
    model.fc = nn.Linear(old.in_features, num_classes).to(old.weight)
    return model


@alternative("reads everything from the model's first parameter and the old weight's shape")
def replace_head(model, num_classes):
    first = next(model.parameters())
    in_features = model.fc.weight.shape[1]
    model.fc = nn.Linear(in_features, num_classes, bias=True).to(device=first.device, dtype=first.dtype)
    return model


# ---------------------------------------------------------------- count_trainable


@decoy("counts every parameter, the frozen ones too")
def count_trainable(model):
    return sum(p.numel() for p in model.parameters())


@decoy("counts tensors, not elements")
def count_trainable(model):
    return len([p for p in model.parameters() if p.requires_grad])


@decoy("counts state_dict(): the buffers (running statistics) too, and the frozen parameters")
def count_trainable(model):
    return sum(t.numel() for t in model.state_dict().values())


@decoy("filters state_dict() by requires_grad: its tensors are detached, so nothing counts")
def count_trainable(model):
    return sum(t.numel() for t in model.state_dict().values() if t.requires_grad)


@decoy("adds up parameters() of every module of modules(): nested parameters counted once per enclosing module")
def count_trainable(model):
    return sum(p.numel() for m in model.modules() for p in m.parameters() if p.requires_grad)


@decoy("each module's own parameters: a parameter shared by two layers counts twice")
def count_trainable(model):
    return sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False) if p.requires_grad)


@decoy("returns a tensor, not a Python int")
def count_trainable(model):
    return torch.tensor([p.numel() for p in model.parameters() if p.requires_grad]).sum()


@alternative("a loop over named_parameters with math.prod of each shape")
def count_trainable(model):
    total = 0
    for _, p in model.named_parameters():
        if p.requires_grad:
            total += math.prod(p.shape)
    return total


@alternative("nelement(), an older name of numel(), over a filtered list")
def count_trainable(model):
    trainable = [p for p in model.parameters() if p.requires_grad]
    return int(sum(p.nelement() for p in trainable))


# ---------------------------------------------------------------- trainable_optimizer


@decoy(
    "SGD over model.parameters(): the frozen weights are in it, and one with a stale .grad moves",
    cite="https://discuss.pytorch.org/t/why-there-is-still-a-small-change-in-frozen-layer-parameters/153740",
)
def trainable_optimizer(model, lr):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


@decoy(
    "the head only: a block the caller unfroze never moves",
    cite="https://discuss.pytorch.org/t/best-practice-for-freezing-layers/58156",
)
def trainable_optimizer(model, lr):
    return torch.optim.SGD(model.fc.parameters(), lr=lr, momentum=0.9)


@decoy("forgets momentum")
def trainable_optimizer(model, lr):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)


@decoy("adds weight decay out of habit: not asked for")
def trainable_optimizer(model, lr):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9, weight_decay=1e-4)


@decoy("Nesterov momentum: not asked for")
def trainable_optimizer(model, lr):
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9, nesterov=True)


@decoy("collects parameters() over modules(): nested and shared parameters appear more than once")
def trainable_optimizer(model, lr):
    params = [p for m in model.modules() for p in m.parameters(recurse=False) if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


@decoy("discards every gradient, then holds every parameter: the model's .grad is not the optimizer's to clear")
def trainable_optimizer(model, lr):
    model.zero_grad(set_to_none=True)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


@decoy("the right parameters, but clears the model's gradients while building it")
def trainable_optimizer(model, lr):
    model.zero_grad()
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)


@decoy("one param group per parameter")
def trainable_optimizer(model, lr):
    groups = [{"params": [p]} for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


@alternative("filter() over parameters(), consumed by the optimizer when it is built")
def trainable_optimizer(model, lr):
    return torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=lr, momentum=0.9)


@alternative("one explicit param group carrying its own settings")
def trainable_optimizer(model, lr):
    params = [p for _, p in model.named_parameters() if p.requires_grad]
    return torch.optim.SGD([{"params": params, "lr": lr, "momentum": 0.9}], lr=lr)


# ---------------------------------------------------------------- set_bn_eval


@decoy("model.eval(): every module, not only the frozen BatchNorm layers")
def set_bn_eval(model):
    return model.eval()


@decoy(
    "BatchNorm2d only, and every one of them, trainable or not",
    cite="https://errorhandle.ai/how-to-freeze-batch-norm-layers-during-transfer-learning",
)
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return model


@decoy("every BatchNorm layer, the trainable ones too")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return model


@decoy("BatchNorm2d only: a frozen BatchNorm1d (after a linear layer) keeps drifting")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
    return model


@decoy("compares the exact type: a subclass of BatchNorm2d is missed")
def set_bn_eval(model):
    for m in model.modules():
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
            if not any(p.requires_grad for p in m.parameters()):
                m.eval()
    return model


@decoy("looks at the weight alone: AttributeError for a layer without parameters, wrong for a trainable bias")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.weight.requires_grad:
            m.eval()
    return model


@decoy("a layer without a weight is taken for a trainable one: an affine=False BatchNorm keeps drifting")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.requires_grad:
            m.eval()
    return model


@decoy("train(not frozen): a trainable BatchNorm layer of a model in eval mode is put in train mode")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(any(p.requires_grad for p in m.parameters()))
    return model


@decoy(
    "momentum 0 instead of eval mode: the statistics stay, but the layer still normalizes with the batch's",
    cite="https://discuss.pytorch.org/t/frozen-batch-normalization-still-shows-different-performance-in-model-train-from-model-eval/25176",
)
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.momentum = 0.0
    return model


@decoy("model.eval(), then train() again on the trainable BatchNorm layers: everything else is left in eval mode")
def set_bn_eval(model):
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(p.requires_grad for p in m.parameters()):
            m.train()
    return model


@alternative("the three classes by name (subclasses match isinstance too), all() over the flags, train(False)")
def set_bn_eval(model):
    for _, m in model.named_modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            if all(not p.requires_grad for p in m.parameters()):
                m.train(False)
    return model


@alternative("apply() with a function, the training flag set directly (a BatchNorm layer has no children)")
def set_bn_eval(model):
    def freeze_stats(m):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if not [p for p in m.parameters() if p.requires_grad]:
                m.training = False

    model.apply(freeze_stats)
    return model


@decoy("turns off track_running_stats instead: the layer now normalizes with each batch's statistics")
def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.track_running_stats = False
    return model


# ---------------------------------------------------------------- train_step


@decoy(
    "train mode and nothing else: the frozen BatchNorm layers rewrite their running statistics",
    cite="https://discuss.pytorch.org/t/what-does-requires-grad-false-on-batchnorm2d-perform/137904",
)
def train_step(model, optimizer, x, y):
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("set_bn_eval before train(): train() switches those layers back")
def train_step(model, optimizer, x, y):
    set_bn_eval(model)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("the whole model in eval mode to protect the statistics: a trainable BatchNorm layer never adapts")
def train_step(model, optimizer, x, y):
    model.eval()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("no train(): a model arriving in eval mode trains in eval mode")
def train_step(model, optimizer, x, y):
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("zero_grad between backward and step: the step has nothing to apply")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


@decoy("never resets the gradients: leftover ones are added to this batch's")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("returns the loss tensor, graph and all")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


@decoy("reports the loss after the step, from a second forward pass")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


@decoy("the summed loss: the step is N times too large")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y, reduction="sum")
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("nll_loss on logits: no log-softmax, not the cross-entropy")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.nll_loss(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


@decoy("train mode throughout, the statistics put back afterwards: the head learned on batch statistics")
def train_step(model, optimizer, x, y):
    model.train()
    saved = {name: b.clone() for name, b in model.named_buffers()}
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(saved[name])
    return loss.item()


@decoy("puts the model back in the mode it arrived in: left in eval mode after the step")
def train_step(model, optimizer, x, y):
    was = model.training
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    model.train(was)
    return loss.item()


@decoy("train() again after the step, 'for the next one': the frozen BatchNorm layers are left in train mode")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    model.train()
    return loss.item()


@alternative("nn.CrossEntropyLoss, the model's zero_grad keeping zeros, float() of the loss")
def train_step(model, optimizer, x, y):
    model.train()
    set_bn_eval(model)
    model.zero_grad(set_to_none=False)
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    optimizer.step()
    return float(loss)


@alternative("modes set module by module, gradients reset first, log-softmax and nll_loss")
def train_step(model, optimizer, x, y):
    optimizer.zero_grad()
    for m in model.modules():
        frozen_bn = isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters())
        m.training = not frozen_bn
    loss = F.nll_loss(F.log_softmax(model(x), dim=1), y)
    loss.backward()
    optimizer.step()
    return loss.detach().item()


# ---------------------------------------------------------------- unfreeze_last_block


@decoy("unfreezes the whole model: fine-tuning becomes full training")
def unfreeze_last_block(model, head_lr, block_lr):
    model.requires_grad_(True)
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("layer4's group first")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4.requires_grad_(True)
    groups = [{"params": model.layer4.parameters(), "lr": block_lr}, {"params": model.fc.parameters(), "lr": head_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("one group with the small rate for everything: the head crawls")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4.requires_grad_(True)
    params = list(model.fc.parameters()) + list(model.layer4.parameters())
    return torch.optim.SGD(params, lr=block_lr, momentum=0.9)


@decoy("builds the groups but never unfreezes layer4: it gets no gradient and never moves")
def unfreeze_last_block(model, head_lr, block_lr):
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("forgets momentum")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4.requires_grad_(True)
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr)


@decoy("unfreezes only the last module of layer4")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4[-1].requires_grad_(True)
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("filters by requires_grad before unfreezing: layer4's group is empty")
def unfreeze_last_block(model, head_lr, block_lr):
    groups = [
        {"params": [p for p in model.fc.parameters() if p.requires_grad], "lr": head_lr},
        {"params": [p for p in model.layer4.parameters() if p.requires_grad], "lr": block_lr},
    ]
    model.layer4.requires_grad_(True)
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("a tenth of the head's rate for layer4, block_lr ignored")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4.requires_grad_(True)
    groups = [{"params": model.fc.parameters()}, {"params": model.layer4.parameters(), "lr": head_lr / 10}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("puts the model in train mode, 'phase two begins': modes were not its to change")
def unfreeze_last_block(model, head_lr, block_lr):
    model.train()
    model.layer4.requires_grad_(True)
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@decoy("refreezes everything first and unfreezes layer4 alone: the head stops training")
def unfreeze_last_block(model, head_lr, block_lr):
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    groups = [{"params": model.fc.parameters(), "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}]
    return torch.optim.SGD(groups, lr=head_lr, momentum=0.9)


@alternative("the head's optimizer first, then add_param_group for layer4")
def unfreeze_last_block(model, head_lr, block_lr):
    for p in model.layer4.parameters():
        p.requires_grad = True
    opt = torch.optim.SGD(model.fc.parameters(), lr=head_lr, momentum=0.9)
    opt.add_param_group({"params": model.layer4.parameters(), "lr": block_lr})
    return opt


@alternative("block_lr as the default, the head's group overriding it, momentum inside each group")
def unfreeze_last_block(model, head_lr, block_lr):
    model.layer4.requires_grad_(True)
    groups = [
        {"params": [p for n, p in model.named_parameters() if n.startswith("fc.")], "lr": head_lr, "momentum": 0.9},
        {"params": [p for n, p in model.named_parameters() if n.startswith("layer4.")], "momentum": 0.9},
    ]
    return torch.optim.SGD(groups, lr=block_lr)


@decoy("unfreezes layer4's convolutions only: its BatchNorm layers stay frozen")
def unfreeze_last_block(model, head_lr, block_lr):
    for m in model.layer4.modules():
        if isinstance(m, nn.Conv2d):
            m.requires_grad_(True)
    block = [p for p in model.layer4.parameters() if p.requires_grad]
    return torch.optim.SGD(
        [{"params": model.fc.parameters(), "lr": head_lr}, {"params": block, "lr": block_lr}], momentum=0.9
    )


@alternative("the head's group as the parameters that train on arrival, which are the head's")
def unfreeze_last_block(model, head_lr, block_lr):
    head = [p for p in model.parameters() if p.requires_grad]
    model.layer4.requires_grad_(True)
    return torch.optim.SGD(
        [{"params": head, "lr": head_lr}, {"params": model.layer4.parameters(), "lr": block_lr}], momentum=0.9
    )
