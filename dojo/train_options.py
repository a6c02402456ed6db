"""The options of `dojo train`, apart from dojo/train.py so that `dojo --help` does not import torch."""

from __future__ import annotations

import argparse
import os


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--impl",
        default=argparse.SUPPRESS,
        help="whose kata 12 to train: katas (default; env KATA_IMPL), solutions, or a folder",
    )
    p.add_argument("--data-dir", help="CIFAR-10: an ImageFolder layout (train/, test/) or torchvision's folder")
    p.add_argument("--download", action="store_true", help="let torchvision download CIFAR-10 into --data-dir")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, mps")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (DataLoader path)")
    p.add_argument("--pin-memory", action="store_true", help="pin host memory (DataLoader path, CUDA only)")
    fast = p.add_mutually_exclusive_group()
    fast.add_argument(
        "--gpu-resident",
        dest="gpu_resident",
        action="store_true",
        default=None,
        help="keep the data set on the device and batch there (default on CUDA)",
    )
    fast.add_argument("--dataloader", dest="gpu_resident", action="store_false", help="use the kata's DataLoaders")
    p.add_argument(
        "--decode-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes decoding JPEGs once for --gpu-resident (cached afterwards)",
    )
    p.add_argument(
        "--crop-padding",
        type=int,
        default=2,
        help="--gpu-resident: random 32x32 crops of the image padded by this many pixels (default 2; "
        "the kata's transform uses 4, which costs a model as small as LeNet accuracy)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.1,
        help="of the cross-entropy loss (default 0.1; 0 for the plain loss)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train with N processes under torchrun (DistributedDataParallel, kata 19's functions)",
    )
    p.add_argument("--synthetic-train", type=int, default=5000, help="images in the synthetic stand-in's training set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/lenet", help="folder for checkpoint.pt, history.json and curves.png")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")


def add_arguments(sub) -> None:
    p = sub.add_parser("train", help="train kata 12's LeNet on CIFAR-10 (or a synthetic stand-in offline)")
    add_train_arguments(p)
