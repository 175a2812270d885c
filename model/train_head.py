"""Train the cat-vs-dog head and the "neither" detector; write model/head.json.

  model/build.sh --train            # fetches the negatives, then runs this
  .cache/venv-model/bin/python model/train_head.py [--images ../shared/data/images] [--cv-repeats 5]

Features are each backbone's 1280 pooled features and ImageNet logits
(outputs of $MODEL_DIR/backbone.onnx, EfficientNet-Lite0 at 224 px, and
$MODEL_DIR/backbone-lite2.onnx, Lite2 at 260 px, both built by
model/build.sh), computed with onnxruntime from pictures preprocessed exactly
as MODEL.md describes and as the Rust classifier does. They are cached under
$MODEL_DIR/features-NAME-*.npz (NAME lite0 or lite2), so a rerun only
repeats the training.

- Cat vs dog: an L2-regularised logistic regression (Newton's method, numpy)
  on Lite2's features.
- Neither: p(pet) = sigmoid(a * ln(pet mass) + a_bias) * sigmoid(learned score),
  the ImageNet evidence (Lite0's softmax mass of dog and domestic-cat
  classes) times the mean of two logistic regressions (one on each
  backbone's features) of cats and dogs against negatives, plus an offset:
  the negatives are pictures from Debian packages (model/negatives.py,
  model/negatives/manifest.tsv) and synthetic ones (model/synthetic.py).
- The yardstick is repeated 5-fold cross-validation over train+dev cats and
  dogs and all negatives (negatives from one folder of a package, or of one
  synthetic kind, stay in one fold). Its figures, with their spread over the
  repeats, are printed and written to $MODEL_DIR/cv-report.json.
- The committed head is then fitted on train/ and all negatives; dev is
  reported with the written, rounded head applied as Rust applies it.
  dev/other (scikit-image's samples) is never trained or calibrated on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import negatives  # noqa: E402
import synthetic  # noqa: E402

HEAD_VERSION = "catdog-head-3"
# Cats and dogs that cross-validation may call other, at most (issue 14 aims at 0.5%).
TARGET_PETS_OTHER = 0.004
# The ImageNet evidence: its threshold is this quantile of the cats' and dogs'
# pet mass; its weights (steepness) are candidates for cross-validation.
MASS_QUANTILE = 0.002
MASS_WEIGHTS = (2.0, 4.0)
ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / os.environ.get("MODEL_DIR", ".cache/model")
HEAD_JSON = ROOT / "model" / "head.json"

# Preprocessing (kept in step with shared/model and MODEL.md). The crop is
# the backbone's input side (224 for Lite0, 260 for Lite2), read from the
# ONNX model by set_input_side(); the shorter side is resized to 8/7 of it
# (256 for 224, 297 for 260), the centre crop ImageNet models are trained for.
MAX_ASPECT_RATIO = 4
CROP = 224
RESIZE_SHORTER_SIDE = 256


def set_input_side(side: int) -> None:
    global CROP, RESIZE_SHORTER_SIDE
    CROP = side
    RESIZE_SHORTER_SIDE = resize_side_for(side)


def resize_side_for(crop: int) -> int:
    """round(crop * 8 / 7), halves up, in integers (as shared/model does)."""
    return (crop * 8 * 2 + 7) // 14


def preprocess_version() -> str:
    return f"max4to1-shorter{RESIZE_SHORTER_SIDE}-triangle-center{CROP}-halfscale"

# ImageNet classes that are a dog (151..=268) or a domestic cat (281..=285).
DOG_CLASSES = range(151, 269)
CAT_CLASSES = range(281, 286)
PET_CLASSES = np.array(list(DOG_CLASSES) + list(CAT_CLASSES))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def resized_size(width: int, height: int) -> tuple[int, int]:
    """Size after scaling the shorter side to RESIZE_SHORTER_SIDE, rounding the longer side."""
    def scale(long: int, short: int) -> int:
        # Round half up in integers, exactly as shared/model/src/preprocess.rs.
        return max(RESIZE_SHORTER_SIDE, (long * RESIZE_SHORTER_SIDE * 2 + short) // (2 * short))

    if width <= height:
        return RESIZE_SHORTER_SIDE, scale(height, width)
    return scale(width, height), RESIZE_SHORTER_SIDE


def preprocess(path: Path) -> np.ndarray:
    """Decode, orient, RGB, shorter side to RESIZE_SHORTER_SIDE (triangle filter), centre CROP, (x/255-0.5)/0.5."""
    with Image.open(path) as im:
        return preprocess_image(ImageOps.exif_transpose(im))


def preprocess_image(im: Image.Image) -> np.ndarray:
    """preprocess() of an already decoded and upright picture."""
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
    # fast_image_resize Bilinear filter the Rust side uses.
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


def extract(session: ort.InferenceSession, items: list[tuple[str, object]], cache: Path, backbone_digest: str):
    """Features and ImageNet logits of each picture.

    `items` are (name, picture) where picture is a path or a function giving
    a PIL image. Cached under `cache` per picture, keyed by the backbone and
    the preprocessing as a whole and by each picture's name (with its file
    size where there is a file): a changed list computes only what is new.
    """
    key = hashlib.sha256()
    key.update(backbone_digest.encode())
    key.update(preprocess_version().encode())
    key = key.hexdigest()

    def item_name(name, picture):
        return f"{name}|{picture.stat().st_size}" if isinstance(picture, Path) else name

    known = {}
    if cache.exists():
        saved = np.load(cache)
        if "names" in saved and str(saved["key"]) == key:
            known = {n: i for i, n in enumerate(saved["names"])}
            old = {k: saved[k] for k in ("features", "logits")}
    out = {k: np.zeros((len(items), n), dtype=np.float32) for k, n in (("features", 1280), ("logits", 1000))}
    names = []
    fresh = 0
    for i, (name, picture) in enumerate(items):
        names.append(item_name(name, picture))
        if names[-1] in known:
            for k in out:
                out[k][i] = old[k][known[names[-1]]]
            continue
        x = preprocess(picture)[None] if isinstance(picture, Path) else preprocess_image(picture())[None]
        out_logits, out_features = session.run(["logits", "features"], {"input": x})
        out["logits"][i], out["features"][i] = out_logits[0], out_features[0]
        fresh += 1
        if fresh % 200 == 0:
            print(f"  {cache.stem}: {fresh} new of {len(items)}", file=sys.stderr)
    if fresh or len(known) != len(items):
        np.savez(cache, key=key, names=np.array(names), **out)
    return out


def negative_group(row: dict) -> str:
    """The cross-validation group of a collected negative: its package's folder.

    OpenCV's tutorial pictures all lie in one folder; there the group is the
    file name's first word instead, which keeps one tutorial's variants of a
    picture (its thresholds, blurs, results) together. So too for a Sweet
    Home 3D catalogue's icons (its chairs together, its lamps together).
    """
    folder, name = (row["package"] + "/" + row["member"].split("!")[-1]).rsplit("/", 1)
    if row["package"] in ("opencv-doc", "sweethome3d-furniture"):
        return f"{folder}/{re.split(r'[^a-z]', name.lower(), maxsplit=1)[0]}"
    return folder


def pet_mass(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[:, PET_CLASSES].sum(axis=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, sample_weight: np.ndarray) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, by Newton's method.

    The bias is not shrunk. The Hessian is summed in float32 (it only steers the steps; the gradient,
    which decides where they stop, is float64).
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    xb32 = xb.astype(np.float32)
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (sample_weight * (p - y)) + penalty * w
        hess = ((xb32 * (sample_weight * p * (1 - p)).astype(np.float32)[:, None]).T @ xb32).astype(np.float64) + np.diag(penalty)
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


def folds_for(rng: np.random.Generator, y: np.ndarray, groups: np.ndarray | None, k: int) -> np.ndarray:
    """Fold of each row: stratified by y; rows of one group always share a fold."""
    fold = np.zeros(len(y), dtype=int)
    if groups is None:
        for c in np.unique(y):
            idx = rng.permutation(np.where(y == c)[0])
            fold[idx] = np.arange(len(idx)) % k
        return fold
    names = rng.permutation(np.unique(groups))
    # Deal the groups, largest first, to the fold with fewest rows so far.
    sizes = {g: int(np.sum(groups == g)) for g in names}
    load = np.zeros(k)
    for g in sorted(names, key=lambda g: -sizes[g]):
        f = int(np.argmin(load + rng.random(k) * 1e-3))
        fold[groups == g] = f
        load[f] += sizes[g]
    return fold


class Standardized:
    """Logistic regression on standardised inputs, folded back to raw inputs."""

    def __init__(self, x: np.ndarray, y: np.ndarray, l2: float):
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        w = fit_logistic((x - self.mean) / self.std, y, l2, balanced_weights(y))
        self.weights = w[:-1] / self.std
        self.bias = float(w[-1] - np.sum(w[:-1] * self.mean / self.std))

    def logit(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights + self.bias


def ln_mass(d: dict) -> np.ndarray:
    """ln of the ImageNet pet mass (as Rust: at least the smallest positive float)."""
    return np.log(np.maximum(pet_mass(d["logits"].astype(np.float64)), np.finfo(np.float64).tiny))


def p_pet(mass_weight: float, mass_bias: float, ln_m: np.ndarray, z_learned: np.ndarray) -> np.ndarray:
    """Both must say pet: the ImageNet evidence and the learned pet-vs-neither score."""
    return sigmoid(mass_weight * ln_m + mass_bias) * sigmoid(z_learned)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def decide(p_pet: np.ndarray, p_dog: np.ndarray) -> np.ndarray:
    """0 cat, 1 dog, 2 other: the highest score, as shared/model/src/head.rs."""
    scores = np.stack([p_pet * (1 - p_dog), p_pet * p_dog, 1 - p_pet], axis=1)
    return np.argmax(scores, axis=1)


def take(d: dict, rows) -> dict:
    return {k: v[rows] for k, v in d.items()}


def cat(*ds: dict) -> dict:
    return {k: np.concatenate([d[k] for d in ds]) for k in ds[0]}


def cross_validate(pets: dict, y_dog: np.ndarray, negs: dict, neg_groups: np.ndarray,
                   l2_catdog: float, l2_neither: float, repeats: int, k: int = 5):
    """Out-of-fold logits, repeat by repeat: (dog logit of pets, pet logit of pets, pet logit of negatives)."""
    out = []
    x_pets_n, x_negs_n = pets["features"].astype(np.float64), negs["features"].astype(np.float64)
    for r in range(repeats):
        rng = np.random.default_rng(1000 + r)
        fp = folds_for(rng, y_dog, None, k)
        fn = folds_for(rng, np.zeros(len(neg_groups)), neg_groups, k)
        z_dog, z_pet, z_neg = np.zeros(len(y_dog)), np.zeros(len(y_dog)), np.zeros(len(neg_groups))
        for f in range(k):
            tp, tn = fp != f, fn != f
            catdog = Standardized(pets["features"][tp].astype(np.float64), y_dog[tp], l2_catdog)
            z_dog[~tp] = catdog.logit(pets["features"][~tp].astype(np.float64))
            xn = np.vstack([x_pets_n[tp], x_negs_n[tn]])
            yn = np.concatenate([np.ones(tp.sum()), np.zeros(tn.sum())])
            neither = Standardized(xn, yn, l2_neither)
            z_pet[~tp] = neither.logit(x_pets_n[~tp])
            z_neg[~tn] = neither.logit(x_negs_n[~tn])
        out.append((z_dog, z_pet, z_neg))
        print(f"  cv repeat {r + 1}/{repeats} done", file=sys.stderr)
    return out


def cv_figures(runs, y_dog: np.ndarray, neg_kinds: np.ndarray, rule: tuple[float, float, float],
               ln_m_pets: np.ndarray, ln_m_negs: np.ndarray) -> dict:
    """Per-repeat figures of a rule (mass weight, mass bias, offset on the learned logit); mean and spread."""
    a, a_bias, offset = rule
    per = {"cat_dog_accuracy": [], "head_accuracy": [], "pets_called_other": [], "negatives_refused": []}
    kinds = sorted(set(neg_kinds))
    per.update({f"refused_{kd}": [] for kd in kinds})
    for z_dog, z_pet, z_neg in runs:
        pred = decide(p_pet(a, a_bias, ln_m_pets, z_pet + offset), sigmoid(z_dog))
        per["cat_dog_accuracy"].append(np.mean(pred == y_dog))
        per["head_accuracy"].append(np.mean((z_dog > 0) == y_dog))
        per["pets_called_other"].append(np.mean(pred == 2))
        neg_pred = decide(p_pet(a, a_bias, ln_m_negs, z_neg + offset), np.full(len(z_neg), 0.5))
        per["negatives_refused"].append(np.mean(neg_pred == 2))
        for kd in kinds:
            per[f"refused_{kd}"].append(np.mean(neg_pred[neg_kinds == kd] == 2))
    return {k: (float(np.mean(v)), float(np.std(v)), float(np.min(v)), float(np.max(v))) for k, v in per.items()}


def show(figures: dict) -> str:
    return "  ".join(f"{k} {m * 100:.2f}%±{s * 100:.2f}" for k, (m, s, _, _) in figures.items())


# The backbones the head reads, in the order head.json lists them (and Rust
# runs them). MODEL.md, "Two backbones", says why these two and why so.
BACKBONES = (("lite0", "backbone.onnx"), ("lite2", "backbone-lite2.onnx"))
MASS_BACKBONE = 0  # whose ImageNet softmax gives the pet mass
CATDOG_BACKBONE = 1  # whose features decide cat against dog
EXPLAIN_BACKBONE = 0  # whose ImageNet classes Rust shows as the breed and the reasons
FEATURE_LEN = 1280


def load_backbone(name: str, onnx: Path, images: Path) -> dict:
    """One backbone's features and logits of every picture the head is trained or checked on.

    Cached beside the backbone as features-NAME-*.npz (see extract). Sets the
    preprocessing's input side (set_input_side) to the backbone's.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machines are shared: one core
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    digest = file_digest(onnx)
    set_input_side(int(session.get_inputs()[0].shape[-1]))
    print(f"{name} ({onnx.name}): input {CROP}x{CROP}, shorter side resized to {RESIZE_SHORTER_SIDE}")
    out = {"name": name, "file": onnx.name, "graph": session.get_modelmeta().graph_name,
           "input_side": CROP, "preprocess": preprocess_version(), "data": {}}

    def cache(what: str) -> Path:
        return onnx.parent / f"features-{name}-{what}.npz"

    for split in ("train", "dev"):
        for label in ("cat", "dog", "other"):
            paths = list_images(images / split / label)
            if paths:
                features = extract(session, [(p.name, p) for p in paths], cache(f"{split}-{label}"), digest)
                out["data"][(split, label)] = (paths, features)
    rows = negatives.read_manifest()
    items = [(f"{r['package']}/{r['member']}/{r['transform']}", (lambda r=r: negatives.load(r))) for r in rows]
    collected = extract(session, items, cache("negatives"), digest)
    synth = list(synthetic.pictures())
    synth_feats = extract(session, [(f"synthetic-{i}-{kd}", (lambda im=im: im)) for i, (kd, im) in enumerate(synth)],
                          cache("synthetic"), digest)
    out["negs"] = cat(collected, synth_feats)
    # Rows that share a source share a fold: a folder of a package (so a Tux
    # Paint stamp and its silhouette go together), or a kind of synthetic picture.
    out["neg_groups"] = np.array([negative_group(r) for r in rows] + [f"synthetic/{kd}" for kd, _ in synth])
    out["neg_kinds"] = np.array([r["kind"] for r in rows]
                                + [f"synthetic-{'silhouette' if kd == 'silhouette' else 'texture'}" for kd, _ in synth])
    return out


def pets_of(b: dict, splits) -> tuple[dict, np.ndarray]:
    """Features of the cats and dogs of `splits`, and 1 for each dog."""
    keys = [(s, lb) for s in splits for lb in ("cat", "dog")]
    y = np.concatenate([np.full(len(b["data"][k][0]), k[1] == "dog", dtype=float) for k in keys])
    return cat(*(b["data"][k][1] for k in keys)), y


def combine(per_backbone: list, catdog: int, neither: list[int]) -> list:
    """Out-of-fold logits of one arrangement, from cross_validate's per backbone.

    p(dog) comes from backbone `catdog`; the learned pet-vs-neither logit is
    the mean of the `neither` backbones' (their folds are the same: same seeds).
    """
    return [(repeat[catdog][0],
             np.mean([repeat[k][1] for k in neither], axis=0),
             np.mean([repeat[k][2] for k in neither], axis=0))
            for repeat in zip(*per_backbone)]


def choose_rule(runs, y_dog: np.ndarray, neg_kinds: np.ndarray, ln_m_pets: np.ndarray, ln_m_negs: np.ndarray,
                threshold: float, label: str = "") -> tuple[float, tuple[float, float, float], dict]:
    """The neither rule (mass weight, mass bias, offset) for out-of-fold logits, with its CV figures.

    For each mass weight, the offset added to the learned logit is the
    smallest (so the most negatives refused) whose pets-called-other rate,
    averaged over the repeats, is at most TARGET_PETS_OTHER. Of those, the
    one with the highest cats-and-dogs-right plus negatives-refused wins;
    returned with that score.
    """
    best = None
    for a in MASS_WEIGHTS:
        for off in np.arange(-2, 10.01, 0.1):
            rule = (a, -a * np.log(threshold), float(round(off, 2)))
            fig = cv_figures(runs, y_dog, neg_kinds, rule, ln_m_pets, ln_m_negs)
            if fig["pets_called_other"][0] <= TARGET_PETS_OTHER:
                break
        print(f"{label}mass weight {a:g}, offset {rule[2]:+.2f}: {show(fig)}")
        for other in (-1, -0.5, 0.5, 1):
            near = (a, rule[1], round(rule[2] + other, 2))
            print(f"    (offset {near[2]:+.2f}: {show(cv_figures(runs, y_dog, neg_kinds, near, ln_m_pets, ln_m_negs))})")
        score = fig["cat_dog_accuracy"][0] + fig["negatives_refused"][0]
        if best is None or score > best[0]:
            best = (score, rule, fig)
    return best


def rounded(values) -> list[float]:
    return [float(f"{v:.7g}") for v in values]


def fit_head(backbones: list[dict], splits, l2_catdog: float, l2_neither: float, rule: tuple[float, float, float],
             threshold: float, catdog: int = CATDOG_BACKBONE, neither: list[int] | None = None,
             mass: int = MASS_BACKBONE) -> dict:
    """The head, in model/head.json's format, fitted on the cats and dogs of `splits` and all negatives.

    The learned pet-vs-neither logit is the mean of one logistic regression
    per backbone in `neither` (default: every backbone) plus the rule's
    offset. The mean, the offset and the standardisation are folded into the
    written weights and bias, so Rust computes Σₖ weights[k] · featuresₖ + bias;
    a backbone outside `neither` gets zero weights.
    """
    neither = list(range(len(backbones))) if neither is None else neither
    a, a_bias, offset = rule
    f64 = lambda x: x.astype(np.float64)  # noqa: E731
    pets, y = pets_of(backbones[catdog], splits)
    catdog_lr = Standardized(f64(pets["features"]), y, l2_catdog)
    weights = [np.zeros(FEATURE_LEN) for _ in backbones]
    bias = offset
    for k in neither:
        b = backbones[k]
        xn = np.vstack([f64(pets_of(b, splits)[0]["features"]), f64(b["negs"]["features"])])
        yn = np.concatenate([np.ones(len(y)), np.zeros(len(b["negs"]["features"]))])
        lr = Standardized(xn, yn, l2_neither)
        weights[k] = lr.weights / len(neither)
        bias += lr.bias / len(neither)
    names = [backbones[k]["name"] for k in neither]
    return {
        "version": HEAD_VERSION,
        "description": f"p(dog | pet) = sigmoid(catdog.weights . features of {backbones[catdog]['name']} + catdog.bias); "
                       f"p(pet) = sigmoid(mass_weight * ln(pet mass of {backbones[mass]['name']}'s ImageNet softmax) + mass_bias)"
                       " * sigmoid(sum over backbones k of neither.weights[k] . features k + neither.bias), the second"
                       f" factor being the mean of the pet-vs-neither logistic regressions on {' and '.join(names)} plus"
                       " the offset; cat = p(pet)(1 - p(dog | pet)), dog = p(pet) p(dog | pet), other = 1 - p(pet).",
        "preprocess": ", ".join(b["preprocess"] for b in backbones),
        "backbones": [{"name": b["name"], "file": b["file"], "input_side": b["input_side"], "feature_len": FEATURE_LEN}
                      for b in backbones],
        "positive_class": "dog",
        "catdog": {"backbone": catdog, "l2": l2_catdog, "weights": rounded(catdog_lr.weights),
                   "bias": float(f"{catdog_lr.bias:.7g}")},
        "neither": {
            "rule": "p(pet) is the ImageNet evidence times a learned pet-vs-neither score. The evidence: the pet "
                    "mass is the mass_backbone's ImageNet softmax summed over the dog and domestic-cat classes, and "
                    "mass_bias = -mass_weight * ln(mass_threshold). The learned score: the mean of one L2 logistic "
                    f"regression per backbone ({', '.join(names)}) of cats and dogs against negatives, plus the offset "
                    "chosen by cross-validation; mean and offset are folded into weights and bias.",
            "dog_classes": [DOG_CLASSES.start, DOG_CLASSES.stop - 1],
            "cat_classes": [CAT_CLASSES.start, CAT_CLASSES.stop - 1],
            "mass_backbone": mass,
            "mass_threshold": float(f"{threshold:.6g}"),
            "mass_weight": a,
            "mass_bias": float(f"{a_bias:.7g}"),
            "l2": l2_neither,
            "offset": offset,
            "weights": [rounded(w) for w in weights],
            "bias": float(f"{bias:.7g}"),
        },
        "explain_backbone": EXPLAIN_BACKBONE,
    }


def apply_head(head: dict, per_backbone: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The decision (0 cat, 1 dog, 2 other) and p(pet) of a written head, as shared/model/src/head.rs computes them.

    `per_backbone` holds the features and logits of the same pictures from
    each backbone, in head["backbones"] order.
    """
    f = [d["features"].astype(np.float64) for d in per_backbone]
    n, c = head["neither"], head["catdog"]
    learned = sum(fk @ np.array(wk) for fk, wk in zip(f, n["weights"])) + n["bias"]
    pp = p_pet(n["mass_weight"], n["mass_bias"], ln_mass(per_backbone[n["mass_backbone"]]), learned)
    p_dog = sigmoid(f[c["backbone"]] @ np.array(c["weights"]) + c["bias"])
    return decide(pp, p_dog), pp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=ROOT / ".." / "shared" / "data" / "images")
    parser.add_argument("--cv-repeats", type=int, default=5, help="repeats of 5-fold cross-validation")
    parser.add_argument("--l2-catdog", type=float, nargs="+", default=[1.0])
    parser.add_argument("--l2-neither", type=float, nargs="+", default=[100.0])
    parser.add_argument("--no-write", action="store_true", help="cross-validate only")
    args = parser.parse_args()

    for _, file in BACKBONES:
        if not (MODEL_DIR / file).exists():
            print(f"{MODEL_DIR / file} is missing: run model/build.sh first", file=sys.stderr)
            return 1
    backbones = [load_backbone(name, MODEL_DIR / file, args.images) for name, file in BACKBONES]
    base = backbones[MASS_BACKBONE]
    for b in backbones:
        assert np.array_equal(b["neg_groups"], base["neg_groups"]), "every backbone sees the same negatives"
    neg_groups, neg_kinds = base["neg_groups"], base["neg_kinds"]

    # The yardstick: repeated 5-fold cross-validation over train+dev cats and
    # dogs and all negatives (dev/other, the scikit-image samples, is kept
    # for judging and never trained on).
    pets_all = [pets_of(b, ("train", "dev"))[0] for b in backbones]
    y_all = pets_of(base, ("train", "dev"))[1]
    print(f"cross-validation: {len(y_all)} cats and dogs, {len(neg_groups)} negatives in {len(set(neg_groups))} groups")
    ln_m_pets, ln_m_negs = ln_mass(pets_all[MASS_BACKBONE]), ln_mass(base["negs"])
    # The ImageNet evidence's threshold: the pet mass below which only
    # MASS_QUANTILE of the train+dev cats and dogs lie.
    threshold = float(np.quantile(np.exp(ln_m_pets), MASS_QUANTILE))
    print(f"pet-mass threshold {threshold:.4f} ({MASS_QUANTILE:.1%} of cats and dogs below it, {base['name']})")
    best = None
    for l2c in args.l2_catdog:
        for l2n in args.l2_neither:
            per_backbone = [cross_validate(p, y_all, b["negs"], neg_groups, l2c, l2n, args.cv_repeats)
                            for p, b in zip(pets_all, backbones)]
            runs = combine(per_backbone, CATDOG_BACKBONE, list(range(len(backbones))))
            score, rule, fig = choose_rule(runs, y_all, neg_kinds, ln_m_pets, ln_m_negs, threshold,
                                           f"l2 cat/dog {l2c:g}, l2 neither {l2n:g}, ")
            if best is None or score > best[0]:
                best = (score, l2c, l2n, rule, fig)
    _, l2c, l2n, rule, fig = best
    a, a_bias, offset = rule
    print(f"chosen: l2 cat/dog {l2c:g}, l2 neither {l2n:g}, mass weight {a:g}, offset {offset:+.2f}")
    for k, (m, sd, lo, hi) in fig.items():
        print(f"  {k:32s} {m * 100:6.2f}% ± {sd * 100:.2f}  ({lo * 100:.2f}-{hi * 100:.2f})")
    report = {"backbones": [b["name"] for b in backbones], "catdog_backbone": CATDOG_BACKBONE,
              "mass_backbone": MASS_BACKBONE, "l2_catdog": l2c, "l2_neither": l2n,
              "mass_threshold": threshold, "mass_weight": a, "offset": offset,
              "repeats": args.cv_repeats, "folds": 5,
              "pets": int(len(y_all)), "negatives": int(len(neg_groups)), "figures": fig}
    (MODEL_DIR / "cv-report.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.no_write:
        return 0

    # The committed head is trained on train/ only (dev stays a check) and
    # all negatives.
    head = fit_head(backbones, ("train",), l2c, l2n, rule, threshold)
    HEAD_JSON.write_text(json.dumps(head, indent=1) + "\n")
    print(f"wrote {HEAD_JSON.relative_to(ROOT)}")

    # Dev, and the training negatives, with the rounded, written head applied
    # exactly as Rust does (shared/model/src/head.rs).
    labels = ("cat", "dog", "other")
    confusion = {t: {p: 0 for p in labels} for t in labels}
    for (split, truth), (paths, _) in base["data"].items():
        if split != "dev":
            continue
        pred, pp = apply_head(head, [b["data"][(split, truth)][1] for b in backbones])
        for path, pr, pet in zip(paths, pred, pp):
            confusion[truth][labels[pr]] += 1
            if labels[pr] != truth:
                print(f"  dev miss: {truth}/{path.name} -> {labels[pr]} (p(pet) {pet:.3f})")
            elif truth == "other":
                print(f"  dev/other/{path.name}: p(pet) {pet:.3f}")
    print("dev confusion (rows truth, columns predicted):", json.dumps(confusion))
    neg_pred, _ = apply_head(head, [b["negs"] for b in backbones])
    print(f"training negatives called cat or dog: {int(np.sum(neg_pred != 2))} of {len(neg_pred)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
