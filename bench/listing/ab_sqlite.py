"""Two `catdog` binaries in turns on the same SQLite listing, the floor beside each run.

  python3 bench/listing/ab_sqlite.py BEFORE AFTER [--size 100000] [--rounds 3] [--seconds 5]

For a change to the SQLite read path: build the release `catdog` before and
after it (copy the first aside), then compare. Each round runs the floor and
then one binary's `catdog serve` under `wrk -t2 -c64` on `/images?limit=10`,
so each figure is a ratio to a floor measured moments before it. Reuses
bench.py's seeding, servers and wrk parsing; needs `wrk` and the model
(`model/build.sh`), like bench/run.sh.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bench  # noqa: E402

PATH = "/images?limit=10"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    binaries = {"before": args.before, "after": args.after}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = bench.Sqlite(work)
        (work / "objects").mkdir()
        (work / "empty").mkdir()
        env = {
            "DATABASE_URL": store.url(),
            "STORAGE_URL": f"file://{work / 'objects'}",
            "INGEST_SOURCES": f"folder:{work / 'empty'}",
            "INGEST_INTERVAL_SECS": "86400",
            "MODEL_DIR": str(bench.ROOT / ".cache/model"),
        }
        serve = lambda name: [str(binaries[name]), "serve", "--web-dir", str(work)]  # noqa: E731
        with bench.running("migrate", serve("after"), {**env, "MIGRATE_ON_START": "true"}, work):
            pass
        store.seed(1, args.size)
        ratios: dict[str, list[float]] = {name: [] for name in binaries}
        for _ in range(args.rounds):
            for name in binaries:
                with bench.running("floor", [str(bench.binary("bench-floor")), "{port}"], {}, work) as floor, \
                        bench.running(name, serve(name), env, work) as api:
                    bench.wrk(api.port, PATH, 1)  # warm-up
                    f = bench.wrk(floor.port, "/images", args.seconds)
                    a = bench.wrk(api.port, PATH, args.seconds)
                    ratios[name].append(a.rps / f.rps)
                    print(f"{name}: {a.rps:,.0f} req/s, {a.rps / f.rps:.2f} of the floor ({f.rps:,.0f}), "
                          f"p50 {a.p50_ms} ms, p99 {a.p99_ms} ms", flush=True)
        for name, values in ratios.items():
            print(f"{name}: median {statistics.median(values):.2f} of the floor over {len(values)} rounds")


if __name__ == "__main__":
    main()
