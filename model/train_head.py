"""Train the cat-vs-dog head and calibrate the "neither" rule; write model/head.json.

  .cache/venv-model/bin/python model/train_head.py [--images ../shared/data/images]

Features are the backbone's 1280 pooled features (output `features` of
$MODEL_DIR/backbone.onnx, built by model/build.sh), computed with onnxruntime
from pictures preprocessed exactly as MODEL.md describes and as the Rust
classifier does. They are cached under $MODEL_DIR/features-*.npz, so a rerun
only repeats the (fast) training.

The head is an L2-regularised logistic regression, fitted with Newton's method
in numpy on `train/{cat,dog}`; its regularisation strength is chosen on
`dev/{cat,dog}`. "Neither" is decided from the backbone's own ImageNet
softmax: the probability mass of the dog and domestic-cat classes. See MODEL.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HEAD_VERSION = "catdog-head-1"
ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / os.environ.get("MODEL_DIR", ".cache/model")
HEAD_JSON = ROOT / "model" / "head.json"

# Preprocessing (kept in step with shared/src/classifier and MODEL.md).
RESIZE_SHORTER_SIDE = 256
CROP = 224
MAX_ASPECT_RATIO = 4
PREPROCESS_VERSION = "max4to1-shorter256-triangle-center224-halfscale"

# ImageNet classes that are a dog (151..=268) or a domestic cat (281..=285).
DOG_CLASSES = range(151, 269)
CAT_CLASSES = range(281, 286)
PET_CLASSES = np.array(list(DOG_CLASSES) + list(CAT_CLASSES))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def resized_size(width: int, height: int) -> tuple[int, int]:
    """Size after scaling the shorter side to 256, rounding the longer side."""
    def scale(long: int, short: int) -> int:
        # Round half up in integers, exactly as shared/src/classifier/preprocess.rs.
        return max(RESIZE_SHORTER_SIDE, (long * RESIZE_SHORTER_SIDE * 2 + short) // (2 * short))

    if width <= height:
        return RESIZE_SHORTER_SIDE, scale(height, width)
    return scale(width, height), RESIZE_SHORTER_SIDE


def preprocess(path: Path) -> np.ndarray:
    """Decode, orient, RGB, shorter side 256 (triangle filter), centre 224, (x/255-0.5)/0.5."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        # Beyond 4:1 only the middle of the long side is kept (as in Rust,
        # where this bounds the memory a thin panorama costs).
        w, h = im.size
        short, long = min(w, h), max(w, h)
        kept = min(long, short * MAX_ASPECT_RATIO)
        if kept < long:
            start = (long - kept) // 2
            box = (start, 0, start + kept, h) if w > h else (0, start, w, start + kept)
            im = im.crop(box)
        w, h = resized_size(*im.size)
        # Pillow's BILINEAR widens its support when shrinking, like the
        # `image` crate's Triangle filter the Rust side uses.
        im = im.resize((w, h), Image.Resampling.BILINEAR)
        left, top = (w - CROP) // 2, (h - CROP) // 2
        im = im.crop((left, top, left + CROP, top + CROP))
        x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract(session: ort.InferenceSession, paths: list[Path], cache: Path, backbone_digest: str):
    """Features and ImageNet pet mass for each picture, cached by content."""
    key = hashlib.sha256()
    key.update(backbone_digest.encode())
    key.update(PREPROCESS_VERSION.encode())
    for p in paths:
        key.update(p.name.encode())
        key.update(str(p.stat().st_size).encode())
    key = key.hexdigest()
    if cache.exists():
        saved = np.load(cache)
        if str(saved["key"]) == key:
            return saved["features"], saved["logits"]
    features = np.zeros((len(paths), 1280), dtype=np.float32)
    logits = np.zeros((len(paths), 1000), dtype=np.float32)
    for i, p in enumerate(paths):
        x = preprocess(p)[None]
        out_logits, out_features = session.run(["logits", "features"], {"input": x})
        logits[i], features[i] = out_logits[0], out_features[0]
        if (i + 1) % 100 == 0:
            print(f"  {cache.stem}: {i + 1}/{len(paths)}", file=sys.stderr)
    np.savez(cache, key=key, features=features, logits=logits)
    return features, logits


def pet_mass(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, PET_CLASSES].sum(axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, sample_weight: np.ndarray) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, by Newton's method."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (sample_weight * (p - y)) + penalty * w
        hess = (xb * (sample_weight * p * (1 - p))[:, None]).T @ xb + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def predict(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(z @ w[:-1] + w[-1])))


def fit_logistic_no_bias(u: np.ndarray, t: np.ndarray, sample_weight: np.ndarray, l2: float = 1.0) -> float:
    """Slope of sigmoid(slope * u), the one parameter fitted by Newton's method."""
    slope = 0.0
    u = u[:, 0]
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-slope * u))
        grad = np.sum(sample_weight * (p - t) * u) + l2 * slope
        hess = np.sum(sample_weight * p * (1 - p) * u * u) + l2
        step = grad / hess
        slope -= step
        if abs(step) < 1e-10:
            break
    return slope


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Each class weighs the same in total, so the head has no prior for dogs."""
    w = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    return w * len(y) / w.sum()


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=ROOT / ".." / "shared" / "data" / "images")
    args = parser.parse_args()

    backbone = MODEL_DIR / "backbone.onnx"
    if not backbone.exists():
        print(f"{backbone} is missing: run model/build.sh first", file=sys.stderr)
        return 1
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(backbone), options, providers=["CPUExecutionProvider"])
    backbone_digest = file_digest(backbone)

    data = {}
    for split in ("train", "dev"):
        for label in ("cat", "dog", "other"):
            paths = list_images(args.images / split / label)
            if paths:
                cache = MODEL_DIR / f"features-{split}-{label}.npz"
                feats, logits = extract(session, paths, cache, backbone_digest)
                data[(split, label)] = (paths, feats, logits)

    def cat_dog(split):
        (_, fc, lc), (_, fd, ld) = data[(split, "cat")], data[(split, "dog")]
        x = np.vstack([fc, fd]).astype(np.float64)
        y = np.concatenate([np.zeros(len(fc)), np.ones(len(fd))])  # 1 = dog
        return x, y, np.vstack([lc, ld])

    x_train, y_train, logits_train = cat_dog("train")
    x_dev, y_dev, logits_dev = cat_dog("dev")

    # Standardise with the training statistics; the weights are folded back
    # into raw-feature space afterwards, so Rust needs only a dot product.
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    z_train, z_dev = (x_train - mean) / std, (x_dev - mean) / std
    sw = balanced_weights(y_train)

    # Dev is small and every setting below gets it all right, so the tie is
    # broken by log-loss pooled over dev and 5-fold cross-validation on train:
    # that prefers a head that is right *and* not needlessly overconfident.
    folds = np.array_split(np.random.default_rng(0).permutation(len(z_train)), 5)
    print("L2 strength  dev accuracy  dev log-loss  cv accuracy  cv log-loss")
    candidates = []
    for l2 in [0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000]:
        w = fit_logistic(z_train, y_train, l2, sw)
        p_dev = predict(z_dev, w)
        p_cv = np.zeros(len(z_train))
        for fold in folds:
            keep = np.ones(len(z_train), dtype=bool)
            keep[fold] = False
            w_fold = fit_logistic(z_train[keep], y_train[keep], l2, balanced_weights(y_train[keep]))
            p_cv[fold] = predict(z_train[fold], w_fold)
        acc_dev = float(np.mean((p_dev > 0.5) == y_dev))
        acc_cv = float(np.mean((p_cv > 0.5) == y_train))
        loss_dev, loss_cv = log_loss(p_dev, y_dev), log_loss(p_cv, y_train)
        pooled = (loss_dev * len(y_dev) + loss_cv * len(y_train)) / (len(y_dev) + len(y_train))
        print(f"{l2:11g}  {acc_dev:12.4f}  {loss_dev:12.4f}  {acc_cv:11.4f}  {loss_cv:11.4f}")
        candidates.append((-acc_dev, pooled, l2, w))
    _, _, best_l2, w = min(candidates, key=lambda c: (c[0], c[1]))
    weights = w[:-1] / std
    bias = float(w[-1] - np.sum(w[:-1] * mean / std))
    print(f"chosen L2 strength {best_l2}")

    # The neither rule: the share of ImageNet softmax on pet classes.
    masses = {k: pet_mass(v[2]) for k, v in data.items()}
    for k, m in sorted(masses.items()):
        print(f"pet mass {k[0]:5}/{k[1]:5}: min {m.min():.4f}  p1 {np.quantile(m, 0.01):.4f}  median {np.median(m):.4f}  max {m.max():.4f}")
    pets = np.concatenate([m for k, m in masses.items() if k[1] != "other"])
    others = masses.get(("dev", "other"))
    if others is None:
        print("dev/other is needed to calibrate the neither rule", file=sys.stderr)
        return 1
    # A few cat and dog photos look less like a pet to ImageNet than any
    # "other" does (a cat behind a feather boa, a dog as a speck), so no
    # threshold separates everything. We take the geometric middle between
    # the most pet-like "other" and the 1st percentile of cats and dogs:
    # a margin on both sides, at the cost of about 1% of pets called other.
    most_pet_like_other = float(others.max())
    pet_p1 = float(np.quantile(pets, 0.01))
    threshold = float(np.sqrt(most_pet_like_other * pet_p1))
    print(f"most pet-like other {most_pet_like_other:.4f}, 1st percentile of pets {pet_p1:.4f} -> threshold {threshold:.4f}")
    print(f"pets below it: {int((pets < threshold).sum())} of {len(pets)}; others above it: {int((others >= threshold).sum())} of {len(others)}")
    # Scores: p(pet) = sigmoid(slope * ln(mass / threshold)), the slope fitted
    # (balanced) on pets vs dev others, so 0.5 falls exactly on the threshold.
    u = np.log(np.concatenate([pets, others]) / threshold)[:, None]
    t = np.concatenate([np.ones(len(pets)), np.zeros(len(others))])
    slope = float(fit_logistic_no_bias(u, t, balanced_weights(t)))
    print(f"pet-probability slope {slope:.3f}")

    head = {
        "version": HEAD_VERSION,
        "description": "logistic regression on EfficientNet-Lite0 pooled features; p(dog) = sigmoid(weights . features + bias)",
        "preprocess": PREPROCESS_VERSION,
        "feature_len": int(len(weights)),
        "positive_class": "dog",
        "l2": best_l2,
        "weights": [float(f"{v:.7g}") for v in weights],
        "bias": float(f"{bias:.7g}"),
        "neither": {
            "rule": "other when the ImageNet softmax mass of dog and domestic-cat classes is below threshold",
            "dog_classes": [DOG_CLASSES.start, DOG_CLASSES.stop - 1],
            "cat_classes": [CAT_CLASSES.start, CAT_CLASSES.stop - 1],
            "threshold": float(f"{threshold:.6g}"),
            "slope": float(f"{slope:.6g}"),
        },
    }
    HEAD_JSON.write_text(json.dumps(head, indent=1) + "\n")
    print(f"wrote {HEAD_JSON.relative_to(ROOT)}")

    # Dev report with the rounded, written head, applied exactly as Rust does
    # (shared/src/classifier/head.rs): the category is the highest score.
    w_r, b_r = np.array(head["weights"]), head["bias"]
    t_r, slope_r = head["neither"]["threshold"], head["neither"]["slope"]
    labels = ("cat", "dog", "other")
    confusion = {t: {p: 0 for p in labels} for t in labels}
    for (split, truth), (paths, feats, logits) in data.items():
        if split != "dev":
            continue
        p_dog = 1 / (1 + np.exp(-(feats.astype(np.float64) @ w_r + b_r)))
        mass = pet_mass(logits)
        p_pet = 1 / (1 + np.exp(-slope_r * np.log(mass / t_r)))
        scores = np.stack([p_pet * (1 - p_dog), p_pet * p_dog, 1 - p_pet], axis=1)
        for path, s, m in zip(paths, scores, mass):
            pred = labels[int(np.argmax(s))]
            confusion[truth][pred] += 1
            if pred != truth:
                print(f"  dev miss: {truth}/{path.name} -> {pred} (scores {np.round(s, 3).tolist()}, pet mass {m:.4f})")
    print("dev confusion (rows truth, columns predicted):", json.dumps(confusion))
    return 0


if __name__ == "__main__":
    sys.exit(main())
