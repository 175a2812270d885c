"""Cross-validate two backbones per picture: a cat/dog head on a larger one, the neither detector on Lite0.

  .cache/venv-model/bin/python model/cv_two_backbones.py \\
      --neither .cache/model --catdog .cache/model-lite1 .cache/model-lite2

Each directory holds a backbone.onnx (model/build.sh, or model/export.py for
Lite1/Lite2); features are extracted and cached there by train_head.extract,
under the same names train_head.py uses. The yardstick is train_head.py's
own: cross_validate (same seeds, so the same folds for every backbone),
cv_figures and decide, with its L2 strengths, pet-mass quantile, mass weights
and offset rule (the smallest offset that calls at most 0.4% of cats and
dogs other; the mass weight with the best cats-and-dogs-right plus
negatives-refused). The neither rule (pet mass and learned score) comes from
the --neither backbone; only p(dog) comes from the --catdog one.

Printed for the --neither backbone alone and for each pairing: the CV
figures, and how many dev/other pictures (never trained or calibrated on) a
head fitted on every train+dev cat and dog and every negative refuses.
`--average` also tries a learned pet-vs-neither score that averages the two
backbones' logits (the pet mass still from the --neither backbone).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
import negatives  # noqa: E402
import synthetic  # noqa: E402
import train_head as th  # noqa: E402


def load(model_dir: Path, images: Path) -> dict:
    """Features and logits of train+dev cats and dogs, dev/other and all negatives (cached as train_head does)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    backbone = model_dir / "backbone.onnx"
    session = ort.InferenceSession(str(backbone), options, providers=["CPUExecutionProvider"])
    th.set_input_side(int(session.get_inputs()[0].shape[-1]))
    digest = th.file_digest(backbone)
    started = time.perf_counter()

    def pictures(split, label):
        paths = th.list_images(images / split / label)
        return th.extract(session, [(p.name, p) for p in paths], model_dir / f"features-{split}-{label}.npz", digest)

    parts = [(s, lb, pictures(s, lb)) for s in ("train", "dev") for lb in ("cat", "dog")]
    rows = negatives.read_manifest()
    items = [(f"{r['package']}/{r['member']}/{r['transform']}", (lambda r=r: negatives.load(r))) for r in rows]
    collected = th.extract(session, items, model_dir / "features-negatives.npz", digest)
    synth = list(synthetic.pictures())
    synth_feats = th.extract(session, [(f"synthetic-{i}-{kd}", (lambda im=im: im)) for i, (kd, im) in enumerate(synth)],
                             model_dir / "features-synthetic.npz", digest)
    out = {
        "name": session.get_modelmeta().graph_name,
        "pets": th.cat(*(d for _, _, d in parts)),
        "y_dog": np.concatenate([np.full(len(d["features"]), lb == "dog", dtype=float) for _, lb, d in parts]),
        "negs": th.cat(collected, synth_feats),
        "neg_groups": np.array([th.negative_group(r) for r in rows] + [f"synthetic/{kd}" for kd, _ in synth]),
        "neg_kinds": np.array([r["kind"] for r in rows]
                              + [f"synthetic-{'silhouette' if kd == 'silhouette' else 'texture'}" for kd, _ in synth]),
        "dev_other": pictures("dev", "other"),
        "dev_other_names": [p.name for p in th.list_images(images / "dev" / "other")],
    }
    print(f"{out['name']}: features of {len(out['y_dog'])} cats and dogs, {len(out['neg_groups'])} negatives "
          f"in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return out


def choose_rule(runs, d: dict, threshold: float):
    """train_head.main's choice: per mass weight the smallest offset calling <= TARGET_PETS_OTHER of pets other; then the best weight."""
    ln_m_pets, ln_m_negs = th.ln_mass(d["pets"]), th.ln_mass(d["negs"])
    best = None
    for a in th.MASS_WEIGHTS:
        for off in np.arange(-2, 10.01, 0.1):
            rule = (a, -a * np.log(threshold), float(round(off, 2)))
            fig = th.cv_figures(runs, d["y_dog"], d["neg_kinds"], rule, ln_m_pets, ln_m_negs)
            if fig["pets_called_other"][0] <= th.TARGET_PETS_OTHER:
                break
        score = fig["cat_dog_accuracy"][0] + fig["negatives_refused"][0]
        if best is None or score > best[0]:
            best = (score, rule, fig)
    return best[1], best[2]


def dev_other_refused(neither: dict, catdog: dict, rule, l2c: float, l2n: float, average_with: dict | None = None) -> list[str]:
    """Fit on all cats and dogs and negatives; the dev/other pictures the rule refuses."""
    a, a_bias, offset = rule
    f64 = lambda x: x.astype(np.float64)  # noqa: E731
    head = th.Standardized(f64(catdog["pets"]["features"]), catdog["y_dog"], l2c)
    scores = []
    for d in [neither] + ([average_with] if average_with else []):
        xn = np.vstack([f64(d["pets"]["features"]), f64(d["negs"]["features"])])
        yn = np.concatenate([np.ones(len(d["y_dog"])), np.zeros(len(d["neg_groups"]))])
        scores.append(th.Standardized(xn, yn, l2n).logit(f64(d["dev_other"]["features"])))
    pp = th.p_pet(a, a_bias, th.ln_mass(neither["dev_other"]), np.mean(scores, axis=0) + offset)
    pred = th.decide(pp, th.sigmoid(head.logit(f64(catdog["dev_other"]["features"]))))
    return [n for n, p in zip(neither["dev_other_names"], pred) if p == 2]


def report(label: str, rule, fig: dict, refused: list[str], n_other: int) -> None:
    print(f"\n{label}: mass weight {rule[0]:g}, offset {rule[2]:+.2f}")
    for k, (m, s, lo, hi) in fig.items():
        print(f"  {k:32s} {m * 100:6.2f}% ± {s * 100:.2f}  ({lo * 100:.2f}-{hi * 100:.2f})")
    print(f"  dev/other refused (fitted on all)  {len(refused)} of {n_other}  {refused}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=th.ROOT / ".." / "shared" / "data" / "images")
    parser.add_argument("--neither", type=Path, default=th.ROOT / ".cache" / "model", help="backbone dir of the neither detector")
    parser.add_argument("--catdog", type=Path, nargs="+", required=True, help="backbone dirs of the cat/dog heads")
    parser.add_argument("--cv-repeats", type=int, default=5)
    parser.add_argument("--l2-catdog", type=float, default=1.0)
    parser.add_argument("--l2-neither", type=float, default=100.0)
    parser.add_argument("--average", action="store_true", help="also average the two learned pet-vs-neither scores")
    args = parser.parse_args()

    base = load(args.neither, args.images)
    others = [load(p, args.images) for p in args.catdog]
    for d in others:
        assert np.array_equal(d["y_dog"], base["y_dog"]) and np.array_equal(d["neg_groups"], base["neg_groups"])
    n_other = len(base["dev_other_names"])
    threshold = float(np.quantile(np.exp(th.ln_mass(base["pets"])), th.MASS_QUANTILE))
    print(f"{len(base['y_dog'])} cats and dogs, {len(base['neg_groups'])} negatives in {len(set(base['neg_groups']))} groups; "
          f"{base['name']} pet-mass threshold {threshold:.4f}")

    def runs_of(d):
        return th.cross_validate(d["pets"], d["y_dog"], d["negs"], d["neg_groups"], args.l2_catdog, args.l2_neither, args.cv_repeats)

    base_runs = runs_of(base)
    rule, fig = choose_rule(base_runs, base, threshold)
    report(f"{base['name']} alone", rule, fig, dev_other_refused(base, base, rule, args.l2_catdog, args.l2_neither), n_other)
    for d in others:
        runs = runs_of(d)
        # p(dog) from this backbone, the neither rule from the base one (same folds: same seeds, same labels and groups).
        pair = [(z_dog, z_pet, z_neg) for (z_dog, _, _), (_, z_pet, z_neg) in zip(runs, base_runs)]
        rule, fig = choose_rule(pair, base, threshold)
        refused = dev_other_refused(base, d, rule, args.l2_catdog, args.l2_neither)
        report(f"{d['name']} cat/dog + {base['name']} neither", rule, fig, refused, n_other)
        if args.average:
            pair = [(z_dog, (zp0 + zp) / 2, (zn0 + zn) / 2) for (z_dog, zp, zn), (_, zp0, zn0) in zip(runs, base_runs)]
            rule, fig = choose_rule(pair, base, threshold)
            refused = dev_other_refused(base, d, rule, args.l2_catdog, args.l2_neither, average_with=d)
            report(f"{d['name']} cat/dog + neither score averaged over {base['name']} and {d['name']} "
                   f"({base['name']} pet mass)", rule, fig, refused, n_other)
    return 0


if __name__ == "__main__":
    sys.exit(main())
