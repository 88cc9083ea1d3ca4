#!/usr/bin/env python3
"""PyTorch reference of agegender's "origin" net (Levi & Hassner 2015).

Same data, split, preprocessing, augmentation, network, initialisation and
optimiser settings as the Go trainer (cmd/agegender train --net origin
--optimizer adam), so the two can be compared side by side:

  /usr/bin/python3 bench/torch_origin.py --task gender --out runs/x/torch_gender.json
  /usr/bin/python3 bench/torch_origin.py --task age --input 64 --epochs 15

What mirrors what in the Go tree:
  labels       data/utkface ParseName (strict age_gender_race_datetime names)
  age groups   data.AgeGroupOf (0-2,3-6,7-13,14-22,23-34,35-45,46-56,57+)
  split        data/utkface SplitOf: FNV-1a 64 of the base name, %100 <80/<90
  cache        data/prep: decode once, resize to resize x resize, uint8 RGB;
               mean = per-channel mean of the training cache (0..255)
  augment      data/prep RandomCropPixels: crop offset, mirror, brightness
               +-20, contrast 1+-0.2 around 127.5 (clamped 0..255), rotation
               +-10 deg about the crop centre (bilinear, edges repeated)
  net/init     model/origin.go (Caffe prototxt)
  optimiser    Adam lr 5e-4, betas 0.9/0.999, eps 1e-7 (GoMLX's default)
  eval         centre crop; 10-crop = 4 corners + centre, each mirrored,
               softmax probabilities averaged (data/prep TenCropPixels)

Random number streams differ from Go's (Go uses PCG per image and step), so
runs agree statistically, not bit for bit.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

AGE_GROUPS = ["0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"]
MAX_AGE = 120


# ---------------------------------------------------------------- labels ---

def parse_name(base):
    """(age, gender, race) from a UTKFace base name, or None if malformed."""
    if base.endswith(".jpg.chip.jpg"):
        stem = base[: -len(".jpg.chip.jpg")]
    elif base.endswith(".jpg"):
        stem = base[: -len(".jpg")]
    else:
        return None
    f = stem.split("_")
    if len(f) != 4:
        return None
    if not _digits(f[0]) or int(f[0]) > MAX_AGE:
        return None
    if f[1] not in ("0", "1"):
        return None
    if len(f[2]) != 1 or not ("0" <= f[2] <= "4"):
        return None
    if not _digits(f[3]):
        return None
    return int(f[0]), int(f[1]), int(f[2])


def _digits(s):
    return s != "" and all("0" <= c <= "9" for c in s)


def age_group(age):
    """Same as data.AgeGroupOf: gaps go to the nearer group, ties to the older."""
    if age <= 2:
        return 0
    if age <= 6:
        return 1
    if age <= 13:
        return 2
    if age <= 22:
        return 3
    if age <= 34:
        return 4
    if age <= 45:
        return 5
    if age <= 56:
        return 6
    return 7


def split_of(base):
    """0 train, 1 val, 2 test: FNV-1a 64 of the UTF-8 base name, % 100."""
    h = 14695981039346656037
    for b in base.encode("utf-8"):
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    m = h % 100
    return 0 if m < 80 else (1 if m < 90 else 2)


def list_samples(folder, task):
    """Sorted (path, label) lists for train/val/test, and the skipped count."""
    splits = ([], [], [])
    skipped = 0
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if os.path.isdir(p):
            continue
        lab = parse_name(name)
        if lab is None:
            skipped += 1
            continue
        age, gender, _ = lab
        y = gender if task == "gender" else age_group(age)
        splits[split_of(name)].append((p, y))
    return splits, skipped


# ----------------------------------------------------------------- cache ---

def build_cache(items, resize, interp):
    """uint8 array N x resize x resize x 3 and int64 labels; unreadable files dropped."""
    imgs = np.empty((len(items), resize, resize, 3), dtype=np.uint8)
    labels = []
    k = 0
    for p, y in items:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != (resize, resize):
                    im = im.resize((resize, resize), interp)
                imgs[k] = np.asarray(im, dtype=np.uint8)
        except Exception as e:  # noqa: BLE001 - report and skip, as the Go cache does
            print(f"skipping {p}: {e}", file=sys.stderr)
            continue
        labels.append(y)
        k += 1
    return imgs[:k], np.asarray(labels, dtype=np.int64)


def mean_of(imgs):
    if len(imgs) == 0:
        return np.zeros(3, dtype=np.float32)
    s = imgs.reshape(-1, 3).sum(axis=0, dtype=np.uint64).astype(np.float64)
    return (s / (imgs.shape[0] * imgs.shape[1] * imgs.shape[2])).astype(np.float32)


# ------------------------------------------------------------------ crops ---

def to_tensor(x, mean):
    """N x H x W x 3 (0..255) -> float32 NCHW tensor minus mean."""
    x = x.astype(np.float32) - mean
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def center_crops(imgs, crop):
    o = (imgs.shape[1] - crop) // 2
    return imgs[:, o:o + crop, o:o + crop, :]


def ten_crops(imgs, crop):
    """List of 10 arrays N x crop x crop x 3 in data/prep TenCropPixels order."""
    e = imgs.shape[1] - crop
    offs = [(0, 0), (e, 0), (0, e), (e, e), (e // 2, e // 2)]
    out = [imgs[:, oy:oy + crop, ox:ox + crop, :] for ox, oy in offs]
    return out + [c[:, :, ::-1, :] for c in out]


def augmented_batch(imgs, crop, rng, mirror=True, bright=20.0, contrast=0.2, rotate=10.0):
    """Random augmented crops (float32, 0..255, N x crop x crop x 3), as
    data/prep RandomCropPixels: the crop samples the image rotated about the
    crop centre with bilinear interpolation and edge pixels repeated; mirror;
    then clamp((v-127.5)*k + 127.5 + b, 0, 255)."""
    n, r = imgs.shape[0], imgs.shape[1]
    e = r - crop
    ox = rng.integers(0, e + 1, n)
    oy = rng.integers(0, e + 1, n)
    mir = rng.integers(0, 2, n).astype(bool) if mirror else np.zeros(n, bool)
    b = rng.uniform(-bright, bright, n).astype(np.float32) if bright else np.zeros(n, np.float32)
    k = rng.uniform(1 - contrast, 1 + contrast, n).astype(np.float32) if contrast else np.ones(n, np.float32)
    ang = rng.uniform(-rotate, rotate, n) * math.pi / 180 if rotate else np.zeros(n)

    half = (crop - 1) / 2.0
    grid = np.arange(crop, dtype=np.float64) - half
    dx = np.broadcast_to(grid[None, None, :], (n, crop, crop)).copy()
    dx[mir] = dx[mir][:, :, ::-1]  # mirrored output column x samples column n-1-x
    dy = np.broadcast_to(grid[None, :, None], (n, crop, crop))
    cx = (ox + half)[:, None, None]
    cy = (oy + half)[:, None, None]
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    sx = np.clip(cx + c * dx - s * dy, 0, r - 1)
    sy = np.clip(cy + s * dx + c * dy, 0, r - 1)
    x0 = sx.astype(np.int64)
    y0 = sy.astype(np.int64)
    x1 = np.minimum(x0 + 1, r - 1)
    y1 = np.minimum(y0 + 1, r - 1)
    fx = (sx - x0).astype(np.float32)[..., None]
    fy = (sy - y0).astype(np.float32)[..., None]
    bi = np.arange(n)[:, None, None]
    p00 = imgs[bi, y0, x0].astype(np.float32)
    p01 = imgs[bi, y0, x1].astype(np.float32)
    p10 = imgs[bi, y1, x0].astype(np.float32)
    p11 = imgs[bi, y1, x1].astype(np.float32)
    v = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy
    v = (v - 127.5) * k[:, None, None, None] + 127.5 + b[:, None, None, None]
    return np.clip(v, 0, 255)


# -------------------------------------------------------------------- net ---

class Origin(nn.Module):
    """model/origin.go: the Caffe definition of Levi & Hassner (2015)."""

    def __init__(self, classes, inp):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 7, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        with torch.no_grad():
            feat = self.features(torch.zeros(1, 3, inp, inp)).shape[1]
        self.fc6 = nn.Linear(feat, 512)
        self.fc7 = nn.Linear(512, 512)
        self.fc8 = nn.Linear(512, classes)
        self.drop = nn.Dropout(0.5)
        for m, std, bias in [(self.conv1, 0.01, 0), (self.conv2, 0.01, 1), (self.conv3, 0.01, 0),
                             (self.fc6, 0.005, 1), (self.fc7, 0.005, 1), (self.fc8, 0.01, 0)]:
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.constant_(m.bias, float(bias))

    def features(self, x):
        x = self.lrn(self.pool(F.relu(self.conv1(x))))
        x = self.lrn(self.pool(F.relu(self.conv2(x))))
        x = self.pool(F.relu(self.conv3(x)))
        return torch.flatten(x, 1)

    def forward(self, x):
        x = self.features(x)
        x = self.drop(F.relu(self.fc6(x)))
        x = self.drop(F.relu(self.fc7(x)))
        return self.fc8(x)


# ------------------------------------------------------------------- eval ---

@torch.no_grad()
def probs(model, crops, mean, bs=100):
    model.eval()
    out = []
    for i in range(0, len(crops), bs):
        out.append(F.softmax(model(to_tensor(crops[i:i + bs], mean)), dim=1))
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(pred, y):
    return float((pred == y).float().mean()) if len(y) else 0.0


def one_off(pred, y):
    return float(((pred - y).abs() <= 1).float().mean()) if len(y) else 0.0


# ------------------------------------------------------------------- main ---

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.normpath(os.path.join(here, "..", "..", "shared", "data", "utkface", "images")),
                    help="UTKFace images folder (default ../shared/data/utkface/images from the module root)")
    ap.add_argument("--task", choices=["gender", "age"], default="gender")
    ap.add_argument("--input", type=int, default=64, help="crop side")
    ap.add_argument("--resize", type=int, default=0, help="cached image side (0: round(input*256/227))")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--eps", type=float, default=1e-7, help="Adam epsilon (GoMLX default 1e-7; PyTorch's is 1e-8)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use at most N images per split, evenly spaced in name order (0: all)")
    ap.add_argument("--interp", choices=["bicubic", "bilinear"], default="bicubic",
                    help="resize filter; Go uses Catmull-Rom, which PIL's bicubic (a=-0.5) matches")
    ap.add_argument("--rotate", type=float, default=10.0, help="max rotation in degrees (0 disables)")
    ap.add_argument("--count-only", action="store_true", help="print split counts from the file names and exit")
    ap.add_argument("--out", default="results.json")
    a = ap.parse_args()
    if a.resize == 0:
        a.resize = (a.input * 256 + 113) // 227  # as cmd/agegender train
    if a.input > a.resize:
        sys.exit(f"--input {a.input} larger than --resize {a.resize}")

    splits, skipped = list_samples(a.data, a.task)
    print(f"{a.data}: {len(splits[0])} train / {len(splits[1])} val / {len(splits[2])} test, {skipped} malformed names skipped",
          flush=True)
    if a.count_only:
        return
    if a.limit > 0:
        # Evenly spaced in name order, so a small run still spans all ages.
        splits = tuple([s[i] for i in np.linspace(0, len(s) - 1, a.limit).round().astype(int)] if len(s) > a.limit
                       else s for s in splits)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    interp = Image.BICUBIC if a.interp == "bicubic" else Image.BILINEAR
    t0 = time.time()
    (xtr, ytr), (xva, yva), (xte, yte) = (build_cache(s, a.resize, interp) for s in splits)
    mean = mean_of(xtr)
    print(f"cached {len(xtr)}+{len(xva)}+{len(xte)} images at {a.resize}x{a.resize} in {time.time() - t0:.1f}s, "
          f"mean {mean.tolist()}", flush=True)
    if len(xtr) < a.batch:
        sys.exit(f"{len(xtr)} training images, fewer than one batch of {a.batch}")

    classes = 2 if a.task == "gender" else len(AGE_GROUPS)
    model = Origin(classes, a.input)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=a.eps)
    ytr_t, yva_t, yte_t = (torch.from_numpy(y) for y in (ytr, yva, yte))
    va_center = center_crops(xva, a.input)

    per_epoch = len(xtr) // a.batch  # the last partial batch is dropped
    history, best_val, best_state = [], -1.0, None
    wall0 = time.time()
    for ep in range(1, a.epochs + 1):
        perm = np.random.default_rng([a.seed, ep]).permutation(len(xtr))
        model.train()
        t = time.time()
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(per_epoch):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            x = augmented_batch(xtr[idx], a.input, rng, rotate=a.rotate)
            x = torch.from_numpy(np.ascontiguousarray((x - mean).transpose(0, 3, 1, 2)))
            y = ytr_t[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        secs = time.time() - t
        val = accuracy(probs(model, va_center, mean).argmax(1), yva_t)
        h = {"epoch": ep, "train_loss": loss_sum / per_epoch, "train_acc": correct / seen, "val_acc": val,
             "seconds": secs, "img_per_sec": seen / secs}
        history.append(h)
        print(f"epoch {ep}/{a.epochs}: loss {h['train_loss']:.4f} train acc {h['train_acc']:.4f} "
              f"val acc {val:.4f} ({h['img_per_sec']:.0f} img/s, {secs:.1f}s)", flush=True)
        if val > best_val:
            best_val = val
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    wall = time.time() - wall0
    model.load_state_dict(best_state)

    pc = probs(model, center_crops(xte, a.input), mean)
    p10 = sum(probs(model, c, mean) for c in ten_crops(xte, a.input)) / 10
    pred_c, pred_10 = pc.argmax(1), p10.argmax(1)

    # Inference throughput: forward passes only, batch 32, centre crops of the test split.
    inf = to_tensor(center_crops(xte, a.input), mean)
    model.eval()
    with torch.no_grad():
        model(inf[:32])  # warm-up
        t, n = time.time(), 0
        for i in range(0, len(inf) - 31, 32):
            model(inf[i:i + 32])
            n += 32
        infer = n / (time.time() - t) if n else 0.0

    train_secs = sum(h["seconds"] for h in history)
    res = {
        "framework": "pytorch", "torch_version": torch.__version__, "threads": a.threads, "task": a.task,
        "input": a.input, "resize": a.resize, "epochs": a.epochs, "batch": a.batch,
        "lr": a.lr, "adam_eps": a.eps, "seed": a.seed, "limit": a.limit,
        "n_train": len(xtr), "n_val": len(xva), "n_test": len(xte), "mean": mean.tolist(),
        "history": history, "best_val": best_val,
        "test_center_acc": accuracy(pred_c, yte_t), "test_tencrop_acc": accuracy(pred_10, yte_t),
    }
    if a.task == "age":
        res["test_center_oneoff"] = one_off(pred_c, yte_t)
        res["test_tencrop_oneoff"] = one_off(pred_10, yte_t)
    res.update({
        "train_seconds": train_secs, "train_wall_seconds": wall,
        "train_img_per_sec": per_epoch * a.batch * len(history) / train_secs if train_secs else 0.0,
        "infer_img_per_sec": infer,
        "notes": [
            f"Adam eps {a.eps:g} (GoMLX Adam default is 1e-7, PyTorch's 1e-8)",
            f"resize with PIL {a.interp} (Go: golang.org/x/image/draw Catmull-Rom)",
            ("rotation +-%g deg implemented in numpy exactly as data/prep rotatedCrop "
             "(torchvision not used)" % a.rotate) if a.rotate else "rotation disabled",
            "train_seconds and img/s count training steps only (no validation), as the Go history;"
            " train_wall_seconds includes validation",
            "train_acc is the epoch mean over batches (Go reports its running training accuracy)",
            "infer_img_per_sec: forward passes only, batch 32, centre crops of the test split",
            "random streams differ from Go's (numpy PCG64 / torch), so results agree statistically only",
        ],
    })
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    msg = f"test: centre {res['test_center_acc']:.4f} 10-crop {res['test_tencrop_acc']:.4f}"
    if a.task == "age":
        msg += f" | 1-off centre {res['test_center_oneoff']:.4f} 10-crop {res['test_tencrop_oneoff']:.4f}"
    print(msg + f" | train {train_secs:.1f}s {res['train_img_per_sec']:.0f} img/s, infer {infer:.0f} img/s -> {a.out}",
          flush=True)


if __name__ == "__main__":
    main()
