"""Compare arrangements of two backbones by cross-validation: a cat/dog head on one, the neither detector on Lite0.

  .cache/venv-model/bin/python model/cv_two_backbones.py --average \\
      --neither lite0=.cache/model/backbone.onnx \\
      --catdog lite1=.cache/model-lite1/backbone.onnx lite2=.cache/model/backbone-lite2.onnx

Each backbone is NAME=ONNX (model/build.sh builds Lite0 and Lite2;
model/export.py exports Lite1 the same way); features are extracted and
cached beside it by train_head.load_backbone, under the names train_head.py
uses. This is train_head.py's yardstick and rule for other arrangements than
the one it writes: cross_validate (same seeds, so the same folds for every
backbone), combine, choose_rule (its L2 strengths, pet-mass quantile, mass
weights and offset rule) and cv_figures. The pet mass always comes from the
--neither backbone; by default so does the learned pet-vs-neither score, and
only p(dog) from the --catdog one. `--average` also tries the learned score
averaged over both backbones: the arrangement train_head.py adopted (Lite0
and Lite2, catdog-head-3).

Printed for the --neither backbone alone and for each pairing: the CV
figures, and how many dev/other pictures (never trained or calibrated on) a
head fitted on every train+dev cat and dog and every negative refuses, with
each one's p(pet).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_head as th  # noqa: E402


def named_backbone(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=ONNX")
    return name, Path(path)


def dev_other(backbones: list[dict], catdog: int, neither: list[int], rule, threshold: float,
              l2c: float, l2n: float) -> list[tuple[str, float, bool]]:
    """Each dev/other picture, its p(pet) and whether it is refused, by a head fitted on all cats, dogs and negatives."""
    head = th.fit_head(backbones, ("train", "dev"), l2c, l2n, rule, threshold, catdog=catdog, neither=neither, mass=0)
    paths = backbones[0]["data"][("dev", "other")][0]
    pred, pp = th.apply_head(head, [b["data"][("dev", "other")][1] for b in backbones])
    return [(p.name, float(q), int(r) == 2) for p, q, r in zip(paths, pp, pred)]


def report(label: str, rule, fig: dict, other: list[tuple[str, float, bool]]) -> None:
    print(f"\n{label}: mass weight {rule[0]:g}, offset {rule[2]:+.2f}")
    for k, (m, s, lo, hi) in fig.items():
        print(f"  {k:32s} {m * 100:6.2f}% ± {s * 100:.2f}  ({lo * 100:.2f}-{hi * 100:.2f})")
    refused = sum(r for _, _, r in other)
    print(f"  dev/other refused (fitted on all)  {refused} of {len(other)}: "
          + ", ".join(f"{n} {q:.2f}{'' if r else ' NOT REFUSED'}" for n, q, r in other))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=th.ROOT / ".." / "shared" / "data" / "images")
    parser.add_argument("--neither", type=named_backbone, default=("lite0", th.MODEL_DIR / "backbone.onnx"),
                        help="NAME=ONNX of the neither detector's backbone")
    parser.add_argument("--catdog", type=named_backbone, nargs="+", required=True,
                        help="NAME=ONNX of each cat/dog head's backbone")
    parser.add_argument("--cv-repeats", type=int, default=5)
    parser.add_argument("--l2-catdog", type=float, default=1.0)
    parser.add_argument("--l2-neither", type=float, default=100.0)
    parser.add_argument("--average", action="store_true", help="also average the two learned pet-vs-neither scores")
    args = parser.parse_args()

    base = th.load_backbone(*args.neither, args.images)
    others = [th.load_backbone(name, path, args.images) for name, path in args.catdog]
    for d in others:
        assert np.array_equal(d["neg_groups"], base["neg_groups"]), "every backbone sees the same negatives"
    pets, y = th.pets_of(base, ("train", "dev"))
    ln_m_pets, ln_m_negs = th.ln_mass(pets), th.ln_mass(base["negs"])
    threshold = float(np.quantile(np.exp(ln_m_pets), th.MASS_QUANTILE))
    neg_groups, neg_kinds = base["neg_groups"], base["neg_kinds"]
    print(f"{len(y)} cats and dogs, {len(neg_groups)} negatives in {len(set(neg_groups))} groups; "
          f"{base['name']} pet-mass threshold {threshold:.4f}")

    def runs_of(d):
        p = th.pets_of(d, ("train", "dev"))[0]
        return th.cross_validate(p, y, d["negs"], neg_groups, args.l2_catdog, args.l2_neither, args.cv_repeats)

    def compare(label: str, backbones: list[dict], runs: list, catdog: int, neither: list[int]) -> None:
        _, rule, fig = th.choose_rule(th.combine(runs, catdog, neither), y, neg_kinds, ln_m_pets, ln_m_negs,
                                      threshold, f"{label}: ")
        other = dev_other(backbones, catdog, neither, rule, threshold, args.l2_catdog, args.l2_neither)
        report(label, rule, fig, other)

    base_runs = runs_of(base)
    compare(f"{base['name']} alone", [base], [base_runs], 0, [0])
    for d in others:
        runs = [base_runs, runs_of(d)]
        compare(f"{d['name']} cat/dog + {base['name']} neither", [base, d], runs, 1, [0])
        if args.average:
            compare(f"{d['name']} cat/dog + neither score averaged over {base['name']} and {d['name']} "
                    f"({base['name']} pet mass)", [base, d], runs, 1, [0, 1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
