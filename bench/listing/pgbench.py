"""PostgreSQL's own CPU per `GET /images` listing, the three statements it
used to run against the one it runs now, with pgbench (same database, same
run, median of 3). Behind the figures in BENCHMARKS.md ("What limits the
unmet aims"):

    python3 bench/listing/pgbench.py postgres://postgres@127.0.0.1:5432/DB [TRANSACTIONS]

DB must hold a seeded gallery: bench/bench.py's `Postgres().seed(1, N)` makes
one (its database is catdog_bench after a listing run). Counts the CPU of
every PostgreSQL process, including backends that ended during the run, so
anything else using PostgreSQL meanwhile is counted too.
"""

import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENTS = 8


def postgres_cpu_seconds() -> float:
    """utime + stime of live postgres processes, plus the postmaster's
    reaped children (cutime + cstime), so ended backends count too."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" not in text:
            continue
        fields = text.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        if int(fields[1]) <= 1:  # the postmaster
            total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def measure(url: str, script: Path, transactions: int) -> float:
    before = postgres_cpu_seconds()
    out = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", "2", "-t", str(transactions),
         "-f", str(script), "-D", "cat=cat", "-D", "dog=dog",
         "-D", "after=9223372036854775807", "-D", "lim=10", url],
        capture_output=True, text=True, check=True,
    ).stdout
    cpu_us = (postgres_cpu_seconds() - before) / (CLIENTS * transactions) * 1e6
    tps = next((line for line in out.splitlines() if line.startswith("tps")), "")
    print(f"{script.name}: {cpu_us:.0f} µs of PostgreSQL CPU per listing; {tps}")
    return cpu_us


def main() -> None:
    url = sys.argv[1]
    transactions = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    medians = {}
    for script in (HERE / "three-statements.sql", HERE / "one-statement.sql"):
        medians[script.name] = statistics.median(measure(url, script, transactions) for _ in range(3))
    for name, value in medians.items():
        print(f"median {name}: {value:.0f} µs")


if __name__ == "__main__":
    main()
