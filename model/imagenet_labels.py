#!/usr/bin/env python3
"""Writes model/imagenet-classes.txt: the 1000 ImageNet class names, one per
line, in the order of the backbone's logits.

The names come from torchvision's model metadata (BSD-3-Clause), read out of
its pinned wheel without installing or importing it. The classifier compiles
the file in to name a picture's breed and the classes behind its verdict.

Run: python3 model/imagenet_labels.py (needs pip and the package registry).
"""

import ast
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "torchvision-0.20.1-cp311-cp311-manylinux1_x86_64.whl"
SHA256 = "86f6523dee420000fe14c3527f6c8e0175139fda7d995b187f54a0b0ebec7eb6"
OUT = pathlib.Path(__file__).resolve().parent / "imagenet-classes.txt"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "torchvision==0.20.1", "--no-deps",
             "--only-binary=:all:", "--python-version", "3.11",
             "--platform", "manylinux1_x86_64", "-q", "-d", tmp],
            check=True,
        )
        wheel = pathlib.Path(tmp) / WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != SHA256:
            sys.exit(f"{WHEEL}: sha256 {digest}, expected {SHA256}")
        source = zipfile.ZipFile(wheel).read("torchvision/models/_meta.py").decode()
    names = None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_IMAGENET_CATEGORIES":
            names = ast.literal_eval(node.value)
    if names is None or len(names) != 1000:
        sys.exit("torchvision's _meta.py no longer holds the 1000 ImageNet class names")
    OUT.write_text("".join(f"{name}\n" for name in names))
    print(f"wrote {OUT.name}: {len(names)} classes")


if __name__ == "__main__":
    main()
