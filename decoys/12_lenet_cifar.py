"""Known-wrong answers (decoys) and known-right alternatives for kata 12 (see dojo/variants.py)."""

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from torchvision import datasets, transforms
from torchvision.transforms import v2

from dojo.variants import alternative, decoy

# ---------------------------------------------------------------- LeNet


@decoy(
    "ends with a softmax 'to get probabilities': the loss applies log-softmax on top and learning crawls",
    cite="https://themissingmanual.dev/guides/pytorch-from-zero/10",
)
class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return F.softmax(self.fc3(x), dim=1)


@decoy("a ReLU after fc3 as after every other layer: no logit is ever negative")
class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return F.relu(self.fc3(x))


@decoy("squeeze() before the linear layers: a batch of one loses its batch dimension, shape (num_classes,)")
class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1).squeeze()
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


@alternative("nn.Sequential stages under other names for the activations, nn.Flatten, functional pooling")
class LeNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=(5, 5), padding=0)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=(5, 5))
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.act = nn.ReLU()

    def forward(self, x):
        x = F.max_pool2d(self.act(self.conv1(x)), kernel_size=2)
        x = F.max_pool2d(self.act(self.conv2(x)), kernel_size=2)
        x = self.act(self.fc1(self.flatten(x)))
        return self.fc3(self.act(self.fc2(x)))


# ---------------------------------------------------------------- make_transform


@decoy(
    "one transform for both splits, augmentation included: the test images change at every read",
    cite="https://discuss.pytorch.org/t/data-transformation-for-training-and-validation-data/32507",
)
def make_transform(train):
    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )


@decoy("normalizes first, then crops the tensor: the padding is 0, mid-gray, not black")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    if not train:
        return transforms.Compose(end)
    return transforms.Compose(end + [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()])


@decoy("ImageNet's mean and std copied from a tutorial: the values are not in [-1, 1]")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train else []
    return transforms.Compose(augment + end)


@decoy("ToTensor only: values in [0, 1], never mapped to [-1, 1]")
def make_transform(train):
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train else []
    return transforms.Compose(augment + [transforms.ToTensor()])


@decoy("RandomResizedCrop(32), the ImageNet recipe: zooms and interpolates instead of shifting over a black border")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    augment = [transforms.RandomResizedCrop(32), transforms.RandomHorizontalFlip()] if train else []
    return transforms.Compose(augment + end)


@decoy("RandomVerticalFlip: upside down instead of mirrored left to right")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    augment = [transforms.RandomCrop(32, padding=4), transforms.RandomVerticalFlip()] if train else []
    return transforms.Compose(augment + end)


@decoy("RandomCrop(32) without padding on a 32x32 image: the crop never shifts")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    augment = [transforms.RandomCrop(32), transforms.RandomHorizontalFlip()] if train else []
    return transforms.Compose(augment + end)


@alternative("flip before the crop, Pad(4) then RandomCrop(32), and x * 2 - 1 written as a Lambda")
def make_transform(train):
    end = [transforms.ToTensor(), transforms.Lambda(lambda x: x * 2 - 1)]
    if train:
        return transforms.Compose(
            [transforms.RandomHorizontalFlip(p=0.5), transforms.Pad(4), transforms.RandomCrop(32)] + end
        )
    return transforms.Compose(end)


@alternative("torchvision.transforms.v2: ToImage, ToDtype(float32, scale=True), Normalize")
def make_transform(train):
    end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.5] * 3)]
    augment = [v2.RandomCrop(32, padding=4, fill=0), v2.RandomHorizontalFlip()] if train else []
    return v2.Compose(augment + end)


# ---------------------------------------------------------------- make_datasets


@decoy("the training transform on both splits: the test split is augmented")
def make_datasets(root, download=False):
    root = Path(root)
    if (root / "train").is_dir():
        return (
            datasets.ImageFolder(root / "train", transform=make_transform(True)),
            datasets.ImageFolder(root / "test", transform=make_transform(True)),
        )
    return (
        datasets.CIFAR10(root, train=True, transform=make_transform(True), download=download),
        datasets.CIFAR10(root, train=False, transform=make_transform(True), download=download),
    )


@decoy("download=True hard-coded, as in the tutorial: every call asks torchvision to download")
def make_datasets(root, download=False):
    root = Path(root)
    if (root / "train").is_dir():
        return (
            datasets.ImageFolder(root / "train", transform=make_transform(True)),
            datasets.ImageFolder(root / "test", transform=make_transform(False)),
        )
    return (
        datasets.CIFAR10(root, train=True, transform=make_transform(True), download=True),
        datasets.CIFAR10(root, train=False, transform=make_transform(False), download=True),
    )


@decoy("the transforms swapped: the training images are never augmented, the test images are")
def make_datasets(root, download=False):
    root = Path(root)
    if (root / "train").is_dir():
        return (
            datasets.ImageFolder(root / "train", transform=make_transform(False)),
            datasets.ImageFolder(root / "test", transform=make_transform(True)),
        )
    return (
        datasets.CIFAR10(root, train=True, transform=make_transform(False), download=download),
        datasets.CIFAR10(root, train=False, transform=make_transform(True), download=download),
    )


@decoy("string concatenation for the path: a pathlib root raises TypeError")
def make_datasets(root, download=False):
    if os.path.isdir(root + "/train"):
        return (
            datasets.ImageFolder(root + "/train", transform=make_transform(True)),
            datasets.ImageFolder(root + "/test", transform=make_transform(False)),
        )
    return (
        datasets.CIFAR10(root, train=True, transform=make_transform(True), download=download),
        datasets.CIFAR10(root, train=False, transform=make_transform(False), download=download),
    )


@decoy("downloads whenever asked, before looking at the layout: a class-folder root becomes CIFAR-10")
def make_datasets(root, download=False):
    root = Path(root)
    if not download and (root / "train").is_dir():
        return (
            datasets.ImageFolder(root / "train", transform=make_transform(True)),
            datasets.ImageFolder(root / "test", transform=make_transform(False)),
        )
    return (
        datasets.CIFAR10(root, train=True, transform=make_transform(True), download=download),
        datasets.CIFAR10(root, train=False, transform=make_transform(False), download=download),
    )


@alternative("os.path and str paths, the test split first, one download request for both splits")
def make_datasets(root, download=False):
    root = os.fspath(root)
    train_dir, test_dir = os.path.join(root, "train"), os.path.join(root, "test")
    if os.path.isdir(train_dir):
        test_set = datasets.ImageFolder(test_dir, transform=make_transform(train=False))
        return datasets.ImageFolder(train_dir, transform=make_transform(train=True)), test_set
    train_set = datasets.CIFAR10(root=root, train=True, transform=make_transform(train=True), download=download)
    return train_set, datasets.CIFAR10(root=root, train=False, transform=make_transform(train=False))


# ---------------------------------------------------------------- make_loaders


@decoy("seeds the global random number generator instead of giving the loader its own")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    torch.manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=num_workers),
        DataLoader(test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers),
    )


@decoy("one generator shared by both loaders: a pass over the test loader moves the training order")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers),
        DataLoader(test_set, batch_size=batch_size, generator=generator, num_workers=num_workers),
    )


@decoy("shuffles the test loader too, and drops its last smaller batch")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers),
        DataLoader(test_set, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=num_workers),
    )


@decoy("drop_last=True on the training loader: the last samples of every epoch are never seen")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(
            train_set, batch_size=batch_size, shuffle=True, drop_last=True, generator=generator, num_workers=num_workers
        ),
        DataLoader(test_set, batch_size=batch_size, num_workers=num_workers),
    )


@decoy("num_workers passed to the training loader only")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers),
        DataLoader(test_set, batch_size=batch_size),
    )


@alternative("a RandomSampler with its own seeded generator instead of shuffle=True")
def make_loaders(train_set, test_set, batch_size, seed=0, num_workers=0):
    sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed))
    return (
        DataLoader(train_set, batch_size=batch_size, sampler=sampler, num_workers=num_workers),
        DataLoader(test_set, batch_size=batch_size, num_workers=num_workers),
    )


# ---------------------------------------------------------------- train_one_epoch


@decoy("forgets model.train(): after an evaluation the model trains in eval mode")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count


@decoy("zero_grad after the step: the gradients the model arrived with leak into the first step")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count


@decoy("the mean of the batch losses: the last, smaller batch counts as much as a full one")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    losses = []
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


@decoy(
    "adds up the loss tensors themselves and returns float(total): every batch's graph stays alive",
    cite="http://pytorch.org/docs/master/notes/faq.html",
)
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total = total + loss * len(labels)
        count += len(labels)
    return float(total) / count


@decoy("keeps a list of the loss tensors to average at the end: every graph stays alive")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    losses, sizes = [], []
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss)
        sizes.append(len(labels))
    return sum(float(loss) * n for loss, n in zip(losses, sizes)) / sum(sizes)


@decoy("moves the images but leaves the labels on the CPU")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images.to(device)), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count


@alternative("loss.item() per batch (a sync per step, still right), model.zero_grad() instead of the optimizer's")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images = images.to(device)
        labels = labels.to(device)
        model.zero_grad(set_to_none=True)
        outputs = model(images)
        loss = loss_fn(outputs, labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * labels.size(0)
        count += labels.size(0)
    return total / count


@alternative("detached losses kept in a list, weighted and summed once at the end; zero_grad(set_to_none=False)")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train(True)
    weighted, count = [], 0
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=False)
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        weighted.append(loss.detach() * labels.shape[0])
        count += labels.shape[0]
    return torch.stack(weighted).sum().item() / count


@alternative("the running total kept as a tensor made on the device, one .item() at the end")
def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total = torch.zeros((), device=device)
    count = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(labels)
        count += len(labels)
    return total.item() / count


# ---------------------------------------------------------------- evaluate


@decoy("forgets model.eval(): dropout stays on and batch norm updates its statistics while measuring")
def evaluate(model, loader, device, num_classes):
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            seen += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    return correct.sum().item() / seen.sum().item(), (correct.double() / seen.double()).tolist()


@decoy("forgets torch.no_grad(): every forward pass records a graph")
def evaluate(model, loader, device, num_classes):
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    for images, labels in loader:
        predicted = model(images.to(device)).argmax(dim=1).cpu()
        seen += torch.bincount(labels, minlength=num_classes)
        correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    return correct.sum().item() / seen.sum().item(), (correct.double() / seen.double()).tolist()


@decoy("the mean of the batches' accuracies: the last, smaller batch weighs as much as a full one")
def evaluate(model, loader, device, num_classes):
    model.eval()
    batch_accuracies = []
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            batch_accuracies.append((predicted == labels).double().mean().item())
            seen += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    per_class = (correct.double() / seen.double()).tolist()
    return sum(batch_accuracies) / len(batch_accuracies), per_class


@decoy("a class with no sample gets 0.0 (nan_to_num): it claims the model fails on a class it never saw")
def evaluate(model, loader, device, num_classes):
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            seen += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    per_class = (correct.double() / seen.double()).nan_to_num(0.0).tolist()
    return correct.sum().item() / seen.sum().item(), per_class


@decoy("divides by the number of samples *predicted* c (precision), not labelled c")
def evaluate(model, loader, device, num_classes):
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    predicted_as = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            predicted_as += torch.bincount(predicted, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    return correct.sum().item() / predicted_as.sum().item(), (correct.double() / predicted_as.double()).tolist()


@decoy("compares the predictions on the device with the labels left on the CPU: a GPU raises")
def evaluate(model, loader, device, num_classes):
    model.eval()
    right, total = 0, 0
    per_right, per_seen = [0] * num_classes, [0] * num_classes
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1)
            hits = predicted == labels
            right += hits.sum().item()
            total += len(labels)
            for c in range(num_classes):
                per_right[c] += (hits & (labels == c)).sum().item()
                per_seen[c] += (labels == c).sum().item()
    return right / total, [r / s if s else math.nan for r, s in zip(per_right, per_seen)]


@decoy("never moves the images to the device: the model on a GPU gets CPU tensors")
def evaluate(model, loader, device, num_classes):
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images).argmax(dim=1).cpu()
            seen += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    return correct.sum().item() / seen.sum().item(), (correct.double() / seen.double()).tolist()


@decoy("switches the model back to training mode when done: the docstring leaves it in eval mode")
def evaluate(model, loader, device, num_classes):
    model.eval()
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            seen += torch.bincount(labels, minlength=num_classes)
            correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    model.train()
    return correct.sum().item() / seen.sum().item(), (correct.double() / seen.double()).tolist()


@decoy("requires_grad_(False) on the model instead of switching recording off: the parameters stay frozen")
def evaluate(model, loader, device, num_classes):
    model.eval()
    model.requires_grad_(False)
    correct = torch.zeros(num_classes, dtype=torch.long)
    seen = torch.zeros(num_classes, dtype=torch.long)
    for images, labels in loader:
        predicted = model(images.to(device)).argmax(dim=1).cpu()
        seen += torch.bincount(labels, minlength=num_classes)
        correct += torch.bincount(labels[predicted == labels], minlength=num_classes)
    return correct.sum().item() / seen.sum().item(), (correct.double() / seen.double()).tolist()


@alternative("inference_mode, predictions brought back to the CPU, a Python loop per class")
def evaluate(model, loader, device, num_classes):
    model.eval()
    right = [0] * num_classes
    seen = [0] * num_classes
    with torch.inference_mode():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(1).cpu()
            for c in range(num_classes):
                mine = labels == c
                seen[c] += int(mine.sum())
                right[c] += int((predicted[mine] == c).sum())
    per_class = [r / s if s else float("nan") for r, s in zip(right, seen)]
    return sum(right) / sum(seen), per_class


@alternative("labels moved to the device; all predictions gathered with torch.cat, counted once at the end")
def evaluate(model, loader, device, num_classes):
    model.eval()
    predictions, targets = [], []
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images.to(device))
            predictions.append(torch.max(logits, dim=1).indices)
            targets.append(labels.to(device))
    predicted, labels = torch.cat(predictions), torch.cat(targets)
    hits = (predicted == labels).float()
    per_class = []
    for c in range(num_classes):
        mine = labels == c
        per_class.append(hits[mine].mean().item() if mine.any() else float("nan"))
    return hits.mean().item(), per_class


# ---------------------------------------------------------------- save_checkpoint


@decoy("saves the weights only: a resumed run starts again from zero momentum")
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "epoch": epoch}, path)


@decoy("pickles the model and optimizer objects: the safe loader refuses the file")
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model, "optimizer": optimizer, "epoch": epoch}, path)


@decoy("saves optimizer.state_dict()['state'] only: the momentum without the settings it belongs to")
def save_checkpoint(path, model, optimizer, epoch):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()["state"], "epoch": epoch}, path)


@alternative("copies moved to the CPU first, the file opened by hand")
def save_checkpoint(path, model, optimizer, epoch):
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    with open(path, "wb") as f:
        torch.save(dict(epoch=int(epoch), optimizer=optimizer.state_dict(), model=state), f)


# ---------------------------------------------------------------- load_checkpoint


@decoy(
    "forgets map_location: a checkpoint written on a GPU does not load on a machine without one",
    cite="https://github.com/agaldran/a_v_uncertain/issues/8",
)
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["epoch"])


@decoy("weights_only=False to silence the warning: a file that runs code runs it")
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["epoch"])


@decoy("loads the weights but not the optimizer's state: resumed training starts from zero momentum")
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    return int(checkpoint["epoch"])


@decoy("strict=False to make a load error go away: a checkpoint that does not fit loads half-way, silently")
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model"], strict=False)
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["epoch"])


@decoy("returns the epoch to start from (epoch + 1), not the one the checkpoint holds")
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["epoch"]) + 1


@alternative(
    "always maps to the CPU (load_state_dict copies onto the model's device) and relies on the default weights_only"
)
def load_checkpoint(path, model, optimizer=None, device="cpu"):
    with open(path, "rb") as f:
        checkpoint = torch.load(f, map_location="cpu")
    model.load_state_dict(checkpoint["model"], strict=True)
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    epoch = checkpoint["epoch"]
    return epoch if isinstance(epoch, int) else int(epoch)
