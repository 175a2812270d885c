"""The benchmark suite of issue 7, driven by bench/run.sh (read that first).

Runs every measurement on this machine against release binaries, with load
from wrk in a separate process on loopback, and writes the results between
the markers in BENCHMARKS.md (or in --out). Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import functools
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "catdog_bench"
CONNECTIONS = 64
LISTING_PATHS = ("/images?limit=10", "/api/v1/images?limit=24")
# list-images as it starts by default (first pages kept until the database
# reports a change) and with keeping turned off (every request a query).
LISTING_VARIANTS = (("exact (default)", {}), ("off", {"LISTING_CACHE_MS": "0"}))


@dataclass
class Mode:
    name: str
    sizes: list[int]
    seconds: int
    repeats: int
    photos: int
    cold_repeats: int


MODES = {
    "quick": Mode("quick", [1_000, 10_000], 2, 2, 60, 3),
    "full": Mode("full", [1_000, 100_000, 1_000_000], 3, 3, 1_000, 5),
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@functools.cache
def target_dir() -> Path:
    # Where cargo puts what it builds: CARGO_TARGET_DIR, or a `build.target-dir`
    # in a cargo config file, or target/; cargo metadata knows which.
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return Path(json.loads(metadata)["target_directory"])


def release_dir() -> Path:
    # BENCH_PROFILE=debug only to try the suite out while a release build runs.
    return target_dir() / os.environ.get("BENCH_PROFILE", "release")


def binary(name: str) -> Path:
    path = release_dir() / name
    if not path.is_file():
        raise SystemExit(f"bench: {path} is missing; bench/run.sh builds it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def vm_hwm_kib(pid: int) -> int | None:
    """Peak resident memory of a running process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    """One of our processes (or the floor) on a free loopback port."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path):
        self.name = name
        self.port = free_port()
        full_env = {**os.environ, "PORT": str(self.port), "LOG_FORMAT": "json", **env}
        self.log_path = logdir / f"{name}-{self.port}.log"
        self.started = time.perf_counter()
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [arg.replace("{port}", str(self.port)) for arg in argv],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def wait_healthy(self, timeout: float = 60.0, path: str = "/healthz") -> float:
        """Seconds from start to the first 200 on `path`, polling every millisecond."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log_path}")
            try:
                status, _ = http_get(self.port, path, timeout=1.0)
                if status == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.001)
        raise RuntimeError(f"{self.name} not healthy after {timeout}s; see {self.log_path}")

    def peak_rss_mib(self) -> float | None:
        kib = vm_hwm_kib(self.process.pid)
        return None if kib is None else kib / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(*args, **kwargs):
    server = Server(*args, **kwargs)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- wrk


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    # CPU microseconds per request: the server, PostgreSQL, wrk itself.
    cpu_us: dict[str, float] = field(default_factory=dict)


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process so far (other users' queries too)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wrk_measured(port: int, path: str, seconds: int, server_pid: int) -> Load:
    """wrk, plus where the CPU went while it ran."""
    import resource

    before = (cpu_seconds(server_pid), postgres_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN))
    load = wrk(port, path, seconds)
    after = (cpu_seconds(server_pid), postgres_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN))
    requests = max(load.rps * seconds, 1)
    wrk_cpu = (after[2].ru_utime + after[2].ru_stime) - (before[2].ru_utime + before[2].ru_stime)
    load.cpu_us = {
        "server": (after[0] - before[0]) / requests * 1e6,
        "postgres": (after[1] - before[1]) / requests * 1e6,
        "wrk": wrk_cpu / requests * 1e6,
    }
    return load


def to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if not match:
        raise ValueError(f"unexpected wrk latency {value!r}")
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number


def wrk(port: int, path: str, seconds: int) -> Load:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    if not rps or "50" not in latency or "99" not in latency:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return Load(float(rps.group(1)), to_ms(latency["50"]), to_ms(latency["99"]), errors)


# ---------------------------------------------------------------- stores and seeding

SCORES = '{"cat": 0.97, "dog": 0.02, "other": 0.01}'
PLACEHOLDER = "YJqGPQw7sFlslqhFafSE+Q6oJ1h2iHB2Rw"

# Row i: a canonical uuid and a 64-hex digest made from i; every tenth picture
# is `other` (no gallery position, as classification leaves it); the rest
# alternate cat and dog with gallery_seq = i, newest = largest.
PG_SEED = f"""
SET synchronous_commit = off;
INSERT INTO images (id, sha256, source, object_name, content_type, byte_size, width, height,
    status, category, confidence, scores, model_version, attempts, created_at, classified_at,
    published_at, thumbnail_object, thumbnail_width, thumbnail_height, placeholder, gallery_seq)
SELECT u::uuid, lpad(to_hex(i), 64, '0'), 'bench', u, 'image/jpeg', 120000, 500, 375,
    'classified', CASE WHEN i % 10 = 0 THEN 'other' WHEN i % 2 = 1 THEN 'cat' ELSE 'dog' END,
    0.97, '{SCORES}'::jsonb, 'bench', 1, t, t, t, 'thumbs/' || u || '.jpg', 320, 240,
    '{PLACEHOLDER}', CASE WHEN i % 10 = 0 THEN NULL ELSE i END
FROM (SELECT i, lpad(to_hex(i), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(i), 12, '0') AS u,
             timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' AS t
      FROM generate_series(__FIRST__, __LAST__) AS i) AS rows;
UPDATE gallery_state SET gallery_seq = COALESCE((SELECT max(gallery_seq) FROM images), 0),
    cat_count = (SELECT count(*) FROM images WHERE category = 'cat'),
    dog_count = (SELECT count(*) FROM images WHERE category = 'dog'),
    other_count = (SELECT count(*) FROM images WHERE category = 'other'),
    last_ingest_at = clock_timestamp() WHERE id = 1;
VACUUM ANALYZE images;
"""

SQLITE_SEED = f"""
WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last),
rows AS (SELECT i, printf('%08x-0000-7000-8000-%012x', i, i) AS u,
                1767225600000000 + i * 1000000 AS t FROM n)
INSERT INTO images (id, sha256, source, object_name, content_type, byte_size, width, height,
    status, category, confidence, scores, model_version, attempts, created_at, classified_at,
    published_at, thumbnail_object, thumbnail_width, thumbnail_height, placeholder, gallery_seq)
SELECT u, printf('%064x', i), 'bench', u, 'image/jpeg', 120000, 500, 375, 'classified',
    CASE WHEN i % 10 = 0 THEN 'other' WHEN i % 2 = 1 THEN 'cat' ELSE 'dog' END,
    0.97, '{SCORES}', 'bench', 1, t, t, t, 'thumbs/' || u || '.jpg', 320, 240,
    '{PLACEHOLDER}', CASE WHEN i % 10 = 0 THEN NULL ELSE i END
FROM rows;
"""

SQLITE_STATE = """
UPDATE gallery_state SET gallery_seq = COALESCE((SELECT max(gallery_seq) FROM images), 0),
    cat_count = (SELECT count(*) FROM images WHERE category = 'cat'),
    dog_count = (SELECT count(*) FROM images WHERE category = 'dog'),
    other_count = (SELECT count(*) FROM images WHERE category = 'other'),
    last_ingest_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER) WHERE id = 1;
"""

# The statements a listing request runs (shared/store/src/{postgres,sqlite}.rs),
# with the first page's parameters. On PostgreSQL a listing is one statement
# (`listing_sql`): the state row left-joined to its pages. SQLite runs the
# state and each page in one read transaction. A request with If-None-Match
# reads the state alone first, for a 304 without a page query.
STATE = ("SELECT cat_count + dog_count, gallery_seq, COALESCE(last_ingest_at, created_at) "
         "FROM gallery_state WHERE id = 1")
FIRST_PAGE = 2**63 - 1


def pg_page(category: str | None, index: int, limit: int) -> str:
    # The limit is written into the statement, as the store does, so that
    # PostgreSQL settles on a generic plan instead of planning every call.
    where = f"category = '{category}' AND gallery_seq IS NOT NULL AND " if category else ""
    return (f"(SELECT *, {index} AS page FROM images WHERE {where}gallery_seq < $1 "
            f"ORDER BY gallery_seq DESC LIMIT {limit})")


def pg_listing(*pages: str) -> str:
    return ("SELECT p.*, s.* FROM (SELECT cat_count + dog_count AS state_total, gallery_seq AS state_seq, "
            "COALESCE(last_ingest_at, created_at) AS state_at FROM gallery_state WHERE id = 1) AS s "
            f"LEFT JOIN ({' UNION ALL '.join(pages)}) AS p ON true ORDER BY p.page, p.gallery_seq DESC")


PG_PLAN_QUERIES = [
    ("GET /images: the state and the newest cats and dogs, one statement",
     pg_listing(pg_page("cat", 0, 10), pg_page("dog", 1, 10)), ("bigint",), (FIRST_PAGE,)),
    ("GET /api/v1/images: the state and a page of both categories, one statement",
     pg_listing(pg_page(None, 0, 24)), ("bigint",), (FIRST_PAGE,)),
    ("the count and freshness alone (a revalidation's 304; no COUNT(*))", STATE, (), ()),
]
SQLITE_PLAN_QUERIES = [
    ("page of one category (GET /images reads it for cat and for dog)",
     "SELECT * FROM images WHERE category = $1 AND gallery_seq IS NOT NULL AND gallery_seq < $2 "
     "ORDER BY gallery_seq DESC LIMIT $3", ("cat", FIRST_PAGE, 10)),
    ("page of both categories (GET /api/v1/images)",
     "SELECT * FROM images WHERE gallery_seq < $1 ORDER BY gallery_seq DESC LIMIT $2", (FIRST_PAGE, 24)),
    ("the count and freshness (both listings, in the same read transaction; no COUNT(*))", STATE, ()),
]


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url],
        input=sql, capture_output=True, text=True, check=True,
    ).stdout


class Store:
    name: str

    def url(self) -> str: ...
    def seed(self, first: int, last: int) -> None: ...
    def plans(self) -> list[tuple[str, str]]: ...
    def close(self) -> None: ...


class Postgres(Store):
    name = "PostgreSQL"

    def __init__(self):
        psql(PG_ADMIN_URL, f"DROP DATABASE IF EXISTS {PG_DATABASE};\nCREATE DATABASE {PG_DATABASE};")
        self._url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE

    def url(self) -> str:
        return self._url

    def seed(self, first: int, last: int) -> None:
        psql(self._url, PG_SEED.replace("__FIRST__", str(first)).replace("__LAST__", str(last)))

    def plans(self) -> list[tuple[str, str]]:
        """As the store runs them: prepared statements, after the five custom
        plans PostgreSQL makes before it may settle on a generic one."""
        out = []
        for what, sql, types, params in PG_PLAN_QUERIES:
            declared = f"({', '.join(types)})" if types else ""
            values = ", ".join(f"'{p}'" if isinstance(p, str) else str(p) for p in params)
            execute = f"EXECUTE q({values})" if params else "EXECUTE q"
            script = f"PREPARE q{declared} AS {sql};\n" + f"{execute};\n" * 6
            script += f"EXPLAIN (ANALYZE, BUFFERS) {execute};\n"
            plan = psql(self._url, script).strip().splitlines()
            # The six warm-up executions print their rows first.
            start = next(i for i, line in enumerate(plan)
                         if line.startswith(("Limit", "Index", "Seq", "Sort", "Nested", "Merge", "Hash", "Append")))
            out.append((what, "\n".join(plan[start:])))
        return out

    def close(self) -> None:
        psql(PG_ADMIN_URL, f"DROP DATABASE IF EXISTS {PG_DATABASE};")


class Sqlite(Store):
    name = "SQLite"

    def __init__(self, workdir: Path):
        self.path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def url(self) -> str:
        return f"sqlite://{self.path}"

    def seed(self, first: int, last: int) -> None:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            with db:
                db.execute(SQLITE_SEED, {"first": first, "last": last})
                db.executescript(SQLITE_STATE)
            db.execute("ANALYZE")

    def plans(self) -> list[tuple[str, str]]:
        out = []
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            for what, sql, params in SQLITE_PLAN_QUERIES:
                sql = re.sub(r"\$(\d)", r"?\1", sql)
                rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
                started = time.perf_counter()
                for _ in range(100):
                    db.execute(sql, params).fetchall()
                each_ms = (time.perf_counter() - started) * 10
                plan = "\n".join(row[3] for row in rows)
                out.append((what, f"{plan}\n(run from Python's sqlite3: {each_ms:.3f} ms each, mean of 100)"))
        return out

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- the measurements


@dataclass
class Report:
    mode: Mode
    started: str = ""
    load_before: str = ""
    load_after: str = ""
    listing: list[dict] = field(default_factory=list)
    plans: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    listing_rss: dict[str, float] = field(default_factory=dict)
    cold: dict[str, dict] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    classify: dict = field(default_factory=dict)
    pipeline: dict = field(default_factory=dict)
    page: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def measure_listing(report: Report, store: Store, workdir: Path) -> None:
    mode = report.mode
    objects = workdir / "objects"
    objects.mkdir(exist_ok=True)
    env = {"DATABASE_URL": store.url(), "STORAGE_URL": f"file://{objects}"}
    # The cloud's list-images has no SQLite (its image leaves it out): on
    # SQLite the read API is local mode's, `catdog serve`, with ingestion
    # pointed at an empty folder once a day.
    server = [str(binary("list-images"))]
    if isinstance(store, Sqlite):
        empty = workdir / "no-pictures"
        empty.mkdir(exist_ok=True)
        server = [str(binary("catdog")), "serve", "--web-dir", str(workdir)]
        env |= {
            "INGEST_SOURCES": f"folder:{empty}",
            "INGEST_INTERVAL_SECS": "86400",
            "MODEL_DIR": os.environ.get("MODEL_DIR", str(ROOT / ".cache/model")),
        }
    # Apply the migrations the way a deployment does, then seed in steps.
    with running("list-images", server, {**env, "MIGRATE_ON_START": "true"}, workdir):
        pass
    seeded = 0
    for size in mode.sizes:
        started = time.perf_counter()
        store.seed(seeded + 1, size)
        seeded = size
        log(f"{store.name}: {size} images seeded in {time.perf_counter() - started:.1f}s")
        for cache, cache_env in LISTING_VARIANTS:
            with running("floor", [str(binary("bench-floor")), "{port}"], {}, workdir) as floor, \
                    running("list-images", server, {**env, **cache_env}, workdir) as api:
                measure_listing_variant(report, store.name, size, cache, floor, api)
    report.plans[store.name] = store.plans()


def measure_listing_variant(report: Report, store: str, size: int, cache: str, floor, api) -> None:
    mode = report.mode
    for path in LISTING_PATHS:
        status, body = http_get(api.port, path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
    wrk(api.port, LISTING_PATHS[0], 1)  # warm-up: pool, caches
    runs: dict[str, list[Load]] = {"floor": [], **{path: [] for path in LISTING_PATHS}}
    for _ in range(mode.repeats):
        # Interleaved, so a burst of someone else's build hits all three alike.
        runs["floor"].append(wrk_measured(floor.port, "/images", mode.seconds, floor.process.pid))
        for path in LISTING_PATHS:
            runs[path].append(wrk_measured(api.port, path, mode.seconds, api.process.pid))
    for path in LISTING_PATHS:
        ratios = [r.rps / f.rps for r, f in zip(runs[path], runs["floor"])]
        report.listing.append({
            "store": store,
            "size": size,
            "cache": cache,
            "path": path,
            "rps": statistics.median(r.rps for r in runs[path]),
            "p50": statistics.median(r.p50_ms for r in runs[path]),
            "p99": statistics.median(r.p99_ms for r in runs[path]),
            "floor_rps": statistics.median(f.rps for f in runs["floor"]),
            "floor_p99": statistics.median(f.p99_ms for f in runs["floor"]),
            "ratio": statistics.median(ratios),
            "errors": sum(r.errors for r in runs[path]),
            "cpu_us": {k: statistics.median(r.cpu_us[k] for r in runs[path]) for k in runs[path][0].cpu_us},
            "floor_cpu_us": {k: statistics.median(f.cpu_us[k] for f in runs["floor"])
                             for k in runs["floor"][0].cpu_us},
        })
    rss = api.peak_rss_mib()
    if rss is not None:
        key = f"{store}, {size} images, cache {cache}"
        report.listing_rss[key] = rss
    log(f"{store} {size} cache {cache}: " + ", ".join(
        f"{row['path']} {row['rps']:.0f} rps ({row['ratio']:.2f} of floor) p99 {row['p99']:.2f} ms"
        for row in report.listing[-len(LISTING_PATHS):]))


def measure_cold_start(report: Report, pg_url: str, workdir: Path) -> None:
    objects = workdir / "objects"
    objects.mkdir(exist_ok=True)
    model_dir = os.environ.get("MODEL_DIR", str(ROOT / ".cache/model"))
    common = {"DATABASE_URL": pg_url, "STORAGE_URL": f"file://{objects}"}
    functions = {
        "list-images": ({}, "/images?limit=10"),
        # The topic is only named at start-up; nothing is published here.
        "ingest-trigger": ({"PUBSUB_TOPIC": "bench", "GOOGLE_CLOUD_PROJECT": "bench",
                            "PUBSUB_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                            "INGEST_SOURCES": "folder:" + str(workdir)}, "/readyz"),
        "classify-image": ({"MODEL_DIR": model_dir}, "/readyz"),
    }
    for name, (extra, real_path) in functions.items():
        healthy, real = [], []
        for _ in range(report.mode.cold_repeats):
            server = Server(name, [str(binary(name))], {**common, **extra}, workdir)
            try:
                healthy.append(server.wait_healthy() * 1000)
                status, body = http_get(server.port, real_path)
                if status != 200:
                    raise RuntimeError(f"{name} {real_path}: {status} {body[:200]!r}")
                real.append((time.perf_counter() - server.started) * 1000)
            finally:
                server.stop()
        report.cold[name] = {"healthz_ms": statistics.median(healthy), "real_ms": statistics.median(real),
                             "real_path": real_path}
        log(f"cold start {name}: {report.cold[name]}")


def measure_classification(report: Report) -> None:
    """End to end from the classify bench (criterion); tract against
    onnxruntime from model/compare-speed.sh (rounds in turns)."""
    bench_cmd = ["cargo", "bench", "-p", "catdog", "--all-features", "--locked", "--bench", "classify"]
    report.commands.append(" ".join(bench_cmd))
    out = subprocess.run(bench_cmd, capture_output=True, text=True, cwd=ROOT)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        report.problems.append(f"`{' '.join(bench_cmd)}` failed: {text.strip().splitlines()[-1:]}")
        return
    tract = {}
    for name, value, unit in re.findall(r"classify/(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+)", text):
        tract[name] = float(value) * {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1, "s": 1000}[unit]
    load = re.search(r"model load \(read \+ optimise\): ([\d.]+)(ms|s|µs)", text)
    if load:
        tract["load"] = float(load.group(1)) * {"ms": 1, "s": 1000, "µs": 1e-3}[load.group(2)]
    report.classify["tract"] = tract

    # The classifier runs both backbones on every picture: each is compared
    # on its own, and inference alone is their sum.
    compare = ROOT / "model/compare-speed.sh"
    summaries = []
    for backbone in ("backbone.onnx", "backbone-lite2.onnx"):
        argv = [str(compare), "--rounds", "3", "--runs", "30", "--backbone", backbone]
        report.commands.append(f"model/compare-speed.sh --rounds 3 --runs 30 --backbone {backbone}")
        out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0 or not out.stdout.strip():
            report.problems.append(f"model/compare-speed.sh --backbone {backbone} failed: "
                                   f"{out.stderr.strip().splitlines()[-1:]}")
            return
        summaries.append(json.loads(out.stdout.strip().splitlines()[-1]))
    # Inference alone as the side-by-side comparisons measured it.
    tract["inference"] = sum(s["tract_ms"] for s in summaries)
    tract["load"] = summaries[0]["model_load_ms"]
    report.classify["ort"] = {"onnxruntime": summaries[0].get("onnxruntime_version"),
                              "inference_ms": sum(s["onnxruntime_ms"] for s in summaries),
                              "load_ms": sum(s["onnxruntime_load_ms"] for s in summaries),
                              "runs": summaries[0]["rounds"] * summaries[0]["runs_per_round"],
                              "min_ratio": round(sum(s["tract_min_ms"] for s in summaries)
                                                 / sum(s["onnxruntime_min_ms"] for s in summaries), 2),
                              "per_backbone": [{"backbone": s["backbone"], "tract_ms": s["tract_ms"],
                                                "onnxruntime_ms": s["onnxruntime_ms"]} for s in summaries],
                              "source": "model/compare-speed.sh"}
    log(f"classification: {report.classify}")


def photos_for_pipeline(count: int, workdir: Path) -> Path:
    """`count` real photos copied into one folder, cats, dogs and others mixed."""
    images = ROOT.parent / "shared/data/images"
    files = sorted(p for p in images.glob("*/*/*") if p.is_file())
    if len(files) < count:
        raise SystemExit(f"bench: only {len(files)} photos under {images}, {count} wanted")
    folder = workdir / "photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    # Every n-th file, so a small run still mixes the folders.
    step = len(files) / count
    for k in range(count):
        source = files[int(k * step)]
        shutil.copyfile(source, folder / f"{k:05d}-{source.name}")
    return folder


def timed(argv: list[str], env: dict[str, str], stdout: Path) -> dict:
    """Runs a command to its end; wall time, CPU time and peak memory from wait4."""
    errors = stdout.with_suffix(".err")
    with open(stdout, "wb") as out, open(errors, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mib": usage.ru_maxrss / 1024,
            "exit": process.returncode, "stderr": errors.read_text(errors="replace")}


def measure_pipeline(report: Report, workdir: Path) -> None:
    count = report.mode.photos
    photos = photos_for_pipeline(count, workdir)
    files = sorted(str(p) for p in photos.iterdir())
    model_dir = os.environ.get("MODEL_DIR", str(ROOT / ".cache/model"))
    catdog = str(binary("catdog"))

    # The classification alone: the same photos, one after another, one process.
    alone = timed([catdog, "classify", *files], {"MODEL_DIR": model_dir}, workdir / "classify.jsonl")
    lines = [json.loads(line) for line in (workdir / "classify.jsonl").read_text().splitlines() if line.strip()]
    classify_ms = sum(line.get("ms", 0.0) for line in lines)

    data = workdir / "import-data"
    shutil.rmtree(data, ignore_errors=True)
    run = timed([catdog, "import", str(photos), "--data-dir", str(data)], {"MODEL_DIR": model_dir},
                workdir / "import.out")
    summary = (workdir / "import.out").read_text(errors="replace")
    if run["exit"] != 0:
        report.problems.append(f"catdog import exited {run['exit']}: {summary[-300:]} {run['stderr'][-300:]}")
    with contextlib.closing(sqlite3.connect(data / "catdog.db")) as db:
        by_status = dict(db.execute("SELECT status, count(*) FROM images GROUP BY status").fetchall())
    cores = os.cpu_count() or 1
    report.pipeline = {
        "photos": count,
        "by_status": by_status,
        "wall_s": run["wall_s"],
        "cpu_s": run["cpu_s"],
        "per_s": count / run["wall_s"],
        "busy": run["cpu_s"] / (run["wall_s"] * cores),
        "max_rss_mib": run["max_rss_mib"],
        "classify_sum_s": classify_ms / 1000,
        "classify_wall_s": alone["wall_s"],
        "classify_cpu_s": alone["cpu_s"],
        "classified_alone": sum(1 for line in lines if "ms" in line),
        "data_dir": data,
        "photos_dir": photos,
    }
    report.commands.append(f"catdog classify PHOTOS/* ; catdog import PHOTOS --data-dir DATA  ({count} photos)")
    log(f"pipeline: {report.pipeline}")


def cpu_seconds(pid: int) -> float:
    """User + system time of a running process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def push(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/pubsub/push", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def measure_cloud_classify(report: Report, pg_url: str, workdir: Path) -> None:
    """The cloud shape's classification: classify-image on PostgreSQL, fed the
    push envelopes Pub/Sub would send for the pipeline's photos (stored as
    ingest-trigger stores them: original object + pending row), 8 at a time."""
    photos = report.pipeline.get("photos_dir") or photos_for_pipeline(report.mode.photos, workdir)
    objects = workdir / "cloud-objects"
    objects.mkdir(exist_ok=True)
    rows, bodies, seen = [], [], set()
    published = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    for k, photo in enumerate(sorted(photos.iterdir())):
        data = photo.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue  # ingestion stores a picture once
        seen.add(digest)
        ident = str(uuid.uuid4())
        (objects / ident).write_bytes(data)
        rows.append(f"('{ident}', '{digest}', 'bench', '{ident}', 'image/jpeg', {len(data)}, 'pending', now())")
        message = json.dumps({"v": 1, "image_id": ident, "object": ident, "sha256": digest}).encode()
        bodies.append(json.dumps({
            "message": {"data": base64.b64encode(message).decode(), "attributes": {"schema": "catdog.image.v1"},
                        "messageId": str(k), "publishTime": published},
            "subscription": "projects/bench/subscriptions/bench"}).encode())
    psql(pg_url, "INSERT INTO images (id, sha256, source, object_name, content_type, byte_size, status, "
                 "created_at) VALUES " + ",\n".join(rows) + ";")
    model_dir = os.environ.get("MODEL_DIR", str(ROOT / ".cache/model"))
    env = {"DATABASE_URL": pg_url, "STORAGE_URL": f"file://{objects}", "MODEL_DIR": model_dir}
    with running("classify-image", [str(binary("classify-image"))], env, workdir) as server:
        cpu_before = cpu_seconds(server.process.pid)
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda body: push(server.port, body), bodies))
        wall = time.perf_counter() - started
        cpu = cpu_seconds(server.process.pid) - cpu_before
        rss = server.peak_rss_mib()
    cores = os.cpu_count() or 1
    report.pipeline["cloud"] = {
        "pictures": len(bodies),
        "wall_s": wall,
        "per_s": len(bodies) / wall,
        "cpu_s": cpu,
        "busy": cpu / (wall * cores),
        "max_rss_mib": rss,
        "statuses": {str(code): statuses.count(code) for code in sorted(set(statuses))},
    }
    report.commands.append("classify-image (release) on PostgreSQL + file:// storage, fed Pub/Sub push "
                           "envelopes by bench/bench.py, 8 in flight")
    log(f"cloud-shape classification: {report.pipeline['cloud']}")


def measure_page(report: Report, workdir: Path) -> None:
    npm = ["npm", "--prefix", "frontend", "run"]
    build = subprocess.run([*npm, "build"], capture_output=True, text=True, cwd=ROOT)
    if build.returncode != 0:
        report.problems.append(f"page build failed: {build.stderr[-300:]}")
        return
    budget = subprocess.run([*npm, "budget"], capture_output=True, text=True, cwd=ROOT)
    text = budget.stdout + budget.stderr
    report.page["budget_output"] = "\n".join(
        line for line in text.splitlines() if line.strip() and not line.startswith(">"))
    report.commands.append("npm --prefix frontend run build && npm --prefix frontend run budget")
    setup = subprocess.run(["bash", "frontend/scripts/setup-chromium.sh"], capture_output=True, text=True, cwd=ROOT)
    if setup.returncode != 0:
        report.problems.append(f"no Chromium for Lighthouse: {setup.stderr.strip()[-300:]}")
        return
    # The real server over the pipeline's gallery; its own ingestion finds
    # only pictures it already has.
    data = report.pipeline.get("data_dir") or (workdir / "page-data")
    photos = report.pipeline.get("photos_dir") or workdir
    env = {"MODEL_DIR": os.environ.get("MODEL_DIR", str(ROOT / ".cache/model")),
           "INGEST_SOURCES": f"folder:{photos}", "INGEST_INTERVAL_SECS": "3600"}
    argv = [str(binary("catdog")), "serve", "--data-dir", str(data), "--web-dir", str(ROOT / "frontend/build")]
    with running("catdog-serve", argv, env, workdir) as serve:
        for flag in ([], ["--desktop"]):
            cmd = [*npm, "lighthouse", "--", f"http://127.0.0.1:{serve.port}/", *flag]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            key = "desktop" if flag else "mobile"
            line = re.search(r"performance (\d+), accessibility (\d+), best practices (\d+)", out.stdout)
            if out.returncode != 0 or not line:
                report.problems.append(f"lighthouse {key} failed: {(out.stdout + out.stderr)[-400:]}")
                continue
            report.page[key] = {"performance": int(line.group(1)), "accessibility": int(line.group(2)),
                                "best_practices": int(line.group(3)),
                                "details": [x.strip() for x in out.stdout.splitlines() if x.startswith("  ")]}
        report.commands.append("catdog serve --data-dir DATA --web-dir frontend/build, then "
                               "npm --prefix frontend run lighthouse -- http://127.0.0.1:PORT/ [--desktop]")
    log(f"page: {report.page}")


def measure_sizes(report: Report) -> None:
    for name in ("list-images", "ingest-trigger", "classify-image", "catdog", "bench-floor"):
        path = release_dir() / name
        if path.is_file():
            report.sizes[name] = path.stat().st_size
        else:
            report.problems.append(f"no {path.name} binary to measure")


# ---------------------------------------------------------------- the table


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "?"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def yes(ok: bool | None) -> str:
    return "—" if ok is None else ("**yes**" if ok else "**no**")


def fmt_size(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def wait_until_quiet(limit_s: float = 150.0) -> None:
    """bench/run.sh builds the release binaries just before, and the 1-minute
    load average stays high for a minute or so after a build ends. Waits (up
    to `limit_s`) until it falls under half the cores, so the load recorded at
    the start says whether other work is running, not that the build was."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if float(loadavg().split()[0]) <= (os.cpu_count() or 1) / 2:
            return
        time.sleep(5)
    log(f"the load average is still {loadavg()}; starting anyway")


def sharing(load_before: str) -> str:
    """What the load average at the start says about the figures: with more
    than half the cores already busy, other work shared them."""
    one_minute = float(load_before.split()[0]) if load_before else 0.0
    if one_minute > (os.cpu_count() or 1) / 2:
        return "Other work shared these cores during the run, so every figure is noisy and pessimistic. "
    return ("The machine was otherwise idle when the run began (load average under half the cores); "
            "the load during the run is the benchmark's own (server, database and wrk share the cores). ")


def render(report: Report) -> str:
    mode = report.mode
    out: list[str] = []
    w = out.append
    # BENCHMARKS.md is the one file this run writes itself.
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)BENCHMARKS.md")
    dirty = " (with uncommitted changes)" if changed else ""
    w(f"Run: {report.started} UTC, `bench/run.sh{' --quick' if mode.name == 'quick' else ''}` ({mode.name} mode), "
      f"commit `{git('rev-parse', '--short', 'HEAD')}`{dirty}.")
    w("")
    w(f"Machine: {os.cpu_count()} cores, {cpu_model()}, {mem_total()}, {platform.system()} {platform.release()}; "
      f"{subprocess.run(['rustc', '--version'], capture_output=True, text=True).stdout.strip()}, "
      f"{subprocess.run(['wrk', '--version'], capture_output=True, text=True).stdout.split(' [')[0].strip()}; "
      f"load average (1, 5, 15 min) {report.load_before} at the start, {report.load_after} at the end. "
      f"{sharing(report.load_before)}"
      "The ratios (measured side by side in the same run) are the figures to trust.")
    w("")

    # Summary of aims.
    rows = []
    listing = report.listing
    for cache, _ in LISTING_VARIANTS:
        rows_of = [r for r in listing if r.get("cache", "off") == cache]
        if not rows_of:
            continue
        which = f"listing cache {cache}"
        worst_ratio = min(r["ratio"] for r in rows_of)
        worst_p99 = max(r["p99"] for r in rows_of)
        rows.append((f"listing throughput ≥ ½ of the floor ({which})", f"lowest {worst_ratio:.2f} of the floor",
                     yes(worst_ratio >= 0.5)))
        rows.append((f"listing p99 < 5 ms at 64 connections ({which})", f"highest {worst_p99:.1f} ms",
                     yes(worst_p99 < 5)))
        flat = []
        small, large = min(mode.sizes), max(mode.sizes)
        for store in ("PostgreSQL", "SQLite"):
            for path in LISTING_PATHS:
                a = [r for r in rows_of if r["store"] == store and r["path"] == path and r["size"] == small]
                b = [r for r in rows_of if r["store"] == store and r["path"] == path and r["size"] == large]
                if a and b and a[0]["p50"] > 0:
                    flat.append((store, path, b[0]["p50"] / a[0]["p50"]))
        if flat:
            worst = max(f[2] for f in flat)
            rows.append((f"p50 at {large:,} / p50 at {small:,} < 1.5 ({which})", f"highest {worst:.2f}",
                         yes(worst < 1.5)))
    tract, ort = report.classify.get("tract", {}), report.classify.get("ort", {})
    if "inference" in tract and ort:
        ratio = tract["inference"] / ort["inference_ms"]
        rows.append(("tract inference ≤ 1.5× onnxruntime, one thread", f"{ratio:.2f}×", yes(ratio <= 1.5)))
    p = report.pipeline
    if p:
        rows.append(("pipeline keeps the cores > 80 % busy", f"{p['busy'] * 100:.0f} %", yes(p["busy"] > 0.8)))
        # CPU time against CPU time: on a machine shared with other builds the
        # wall times say more about the others than about us.
        cpu_ratio = p["cpu_s"] / p["classify_cpu_s"] if p["classify_cpu_s"] else float("inf")
        rows.append(("pipeline total ≤ 1.3× the classification times alone",
                     f"CPU time {cpu_ratio:.2f}× `catdog classify`'s; wall time "
                     f"{p['wall_s'] / p['classify_sum_s']:.2f}× the sum of its per-picture times",
                     yes(cpu_ratio <= 1.3)))
    if p.get("cloud"):
        c = p["cloud"]
        rows.append(("cloud shape: classify-image keeps the cores > 80 % busy", f"{c['busy'] * 100:.0f} %",
                     yes(c["busy"] > 0.8)))
    limits = {"list-images": 50, "ingest-trigger": 50, "classify-image": 500}
    for name, figures in report.cold.items():
        rows.append((f"{name} cold start < {limits[name]} ms", f"{figures['healthz_ms']:.0f} ms",
                     yes(figures["healthz_ms"] < limits[name])))
    if report.listing_rss:
        worst = max(report.listing_rss.values())
        rows.append(("list-images < 50 MB resident under load", f"at most {worst:.1f} MiB", yes(worst < 50)))
    gz = re.search(r"first page JavaScript ([\d.]+) KB", report.page.get("budget_output", ""))
    if gz:
        rows.append(("first-page JavaScript ≤ 60 KB gzipped", f"{gz.group(1)} KB", yes(float(gz.group(1)) <= 60)))
    for key in ("mobile", "desktop"):
        if key in report.page:
            s = report.page[key]
            rows.append((f"Lighthouse ({key}): performance, accessibility", f"{s['performance']}, {s['accessibility']}",
                         "—"))
    w("### Aims")
    w("")
    w("| aim | measured | met? |")
    w("| --- | --- | --- |")
    for aim, measured, met in rows:
        w(f"| {aim} | {measured} | {met} |")
    w("")

    if listing:
        w(f"### Listing ({CONNECTIONS} connections, wrk -t2, {mode.seconds} s per run, median of {mode.repeats} runs)")
        w("")
        w("The floor is `bench-floor` (bench/floor), measured between the two listings in every round; "
          "\"of floor\" is the median of the per-round ratios.")
        w("")
        w("| store | images | listing cache | request | req/s | of floor | p50 ms | p99 ms | floor req/s "
          "| floor p99 ms | errors |")
        w("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in listing:
            w(f"| {r['store']} | {fmt_size(r['size'])} | {r.get('cache', 'off')} | `GET {r['path']}` | "
              f"{r['rps']:.0f} | {r['ratio']:.2f} | "
              f"{r['p50']:.2f} | {r['p99']:.2f} | {r['floor_rps']:.0f} | {r['floor_p99']:.2f} | {r['errors']} |")
        w("")
        w("Where the CPU goes: CPU time per request in microseconds (median over the runs), from /proc while "
          "wrk ran. The two cores are shared by the server, PostgreSQL and wrk itself, so 2 s of CPU per second "
          "divided by the sum is the most this machine can serve. PostgreSQL's figure includes whatever else "
          "used PostgreSQL meanwhile.")
        w("")
        w("| store | images | listing cache | request | server | PostgreSQL | wrk | sum | floor server | floor wrk |")
        w("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in listing:
            c, f = r["cpu_us"], r["floor_cpu_us"]
            w(f"| {r['store']} | {fmt_size(r['size'])} | {r.get('cache', 'off')} | `GET {r['path']}` | "
              f"{c['server']:.0f} | {c['postgres']:.0f} | "
              f"{c['wrk']:.0f} | {sum(c.values()):.0f} | {f['server']:.0f} | {f['wrk']:.0f} |")
        w("")
        w("Peak resident memory of list-images (VmHWM) after the listing load: " + "; ".join(
            f"{k}: {v:.1f} MiB" for k, v in report.listing_rss.items()) + ".")
        w("")
    for store, plans in report.plans.items():
        w(f"#### Query plans, {store}, {fmt_size(max(mode.sizes))} images")
        w("")
        for what, plan in plans:
            w(f"{what}:")
            w("")
            w("```")
            w(plan.strip())
            w("```")
            w("")

    if tract or ort:
        w("### Classification (one thread each, same model, same photo, same run)")
        w("")
        w("| what | tract | onnxruntime | ratio |")
        w("| --- | ---: | ---: | ---: |")
        if "inference" in tract and ort:
            for one in ort.get("per_backbone", []):
                w(f"| inference alone, `{one['backbone']}` | {one['tract_ms']:.1f} ms | "
                  f"{one['onnxruntime_ms']:.1f} ms | {one['tract_ms'] / one['onnxruntime_ms']:.2f}× |")
            w(f"| inference alone, both backbones | {tract['inference']:.1f} ms | {ort['inference_ms']:.1f} ms | "
              f"{tract['inference'] / ort['inference_ms']:.2f}× |")
        if "decode+preprocess+inference" in tract:
            pillow = (f"{ort['decode_preprocess_ms'] + ort['inference_ms']:.1f} ms (Pillow)"
                      if "decode_preprocess_ms" in ort else "—")
            w(f"| decode + preprocess + inference | {tract['decode+preprocess+inference']:.1f} ms | {pillow} | — |")
        if "decode+classify+thumbnail" in tract:
            w(f"| decode + classify + thumbnail + ThumbHash | {tract['decode+classify+thumbnail']:.1f} ms | — | — |")
        if "load" in tract:
            w(f"| model load | {tract['load']:.0f} ms | {ort.get('load_ms', 0):.0f} ms | "
              f"{tract['load'] / max(ort.get('load_ms', 1), 1e-9):.2f}× |")
        w("")
        if ort:
            w(f"Inference alone and model load: `model/compare-speed.sh` (tract and onnxruntime "
              f"{ort.get('onnxruntime')} in turns, medians of {ort.get('runs')} inferences each; ratio of the "
              f"fastest runs {ort.get('min_ratio')}×). The other rows: criterion's middle estimate from "
              "`cargo bench --bench classify`.")
            w("")

    if p:
        w(f"### Pipeline (`catdog import` of {p['photos']} real photos, local mode)")
        w("")
        w("| what | figure |")
        w("| --- | ---: |")
        w(f"| wall time until all classified | {p['wall_s']:.1f} s |")
        w(f"| pictures per second | {p['per_s']:.1f} |")
        w(f"| CPU time (user + system) | {p['cpu_s']:.1f} s |")
        w(f"| cores busy ({os.cpu_count()} cores) | {p['busy'] * 100:.0f} % |")
        w(f"| peak resident memory of catdog | {p['max_rss_mib']:.0f} MiB |")
        w(f"| sum of the classification times alone (`catdog classify`, decode + inference) | "
          f"{p['classify_sum_s']:.1f} s ({p['classified_alone']} photos) |")
        w(f"| `catdog classify` of the same photos: wall, CPU | {p['classify_wall_s']:.1f} s, "
          f"{p['classify_cpu_s']:.1f} s |")
        w(f"| outcome | {', '.join(f'{n} {s}' for s, n in sorted(p['by_status'].items()))} |")
        w("")
        c = p.get("cloud")
        if c:
            w(f"Cloud shape, classification only: classify-image (release) on PostgreSQL with file:// storage, "
              f"fed {c['pictures']} push envelopes of the same photos, 8 in flight: {c['wall_s']:.1f} s, "
              f"{c['per_s']:.1f} pictures/s, CPU {c['cpu_s']:.1f} s ({c['busy'] * 100:.0f} % of the cores), "
              f"peak resident memory {c['max_rss_mib']:.0f} MiB, answers "
              f"{', '.join(f'{n}× {code}' for code, n in c['statuses'].items())}. "
              "ingest-trigger and Pub/Sub itself are not in this figure.")
            w("")

    if report.cold:
        w(f"### Cold start (process start to first answer, median of {mode.cold_repeats}, PostgreSQL on loopback)")
        w("")
        w("| function | first 200 on /healthz | first real answer |")
        w("| --- | ---: | ---: |")
        for name, c in report.cold.items():
            w(f"| {name} | {c['healthz_ms']:.0f} ms | {c['real_ms']:.0f} ms (`GET {c['real_path']}`) |")
        w("")
        w("classify-image loads and optimises the model before it listens, so its /healthz time includes "
          "the model load measured above.")
        w("")

    if report.sizes:
        w("### Release binaries (`scripts/build-release.sh`, stripped)")
        w("")
        w("| binary | size |")
        w("| --- | ---: |")
        for name, size in report.sizes.items():
            w(f"| {name} | {size / 1024 / 1024:.1f} MiB |")
        w("")

    if report.page:
        w("### The page")
        w("")
        if "budget_output" in report.page:
            w("```")
            w(report.page["budget_output"])
            w("```")
            w("")
        for key in ("mobile", "desktop"):
            if key in report.page:
                s = report.page[key]
                w(f"Lighthouse {key}: performance {s['performance']}, accessibility {s['accessibility']}, "
                  f"best practices {s['best_practices']}.")
                w("")
                for detail in s["details"]:
                    w(f"- {detail}")
                w("")

    if report.problems:
        w("### What did not run")
        w("")
        for problem in report.problems:
            w(f"- {problem}")
        w("")
    w("### Commands")
    w("")
    w("- load: `wrk -t2 -c64 -dNs --latency URL` against each server on 127.0.0.1")
    for command in report.commands:
        w(f"- `{command}`")
    return "\n".join(out)


def write(report: Report, target: Path) -> None:
    body = render(report)
    text = target.read_text() if target.exists() else f"{START_MARK}\n{END_MARK}\n"
    if START_MARK not in text or END_MARK not in text:
        text = text.rstrip() + f"\n\n{START_MARK}\n{END_MARK}\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    target.write_text(f"{head}{START_MARK}\n{body}\n{END_MARK}{tail}")
    log(f"wrote {target}")


def print_cost_inputs(report: Report) -> None:
    """Prints the measured inputs of docs/COST.md's cost table (M1–M9 there),
    with their units, from this run's report. The run keeps no results file,
    so this prints at the end of a run; parts not run are said to be missing."""
    out = ["", "cost inputs (docs/COST.md), measured in this run:"]

    def spread(values: list[float]) -> str:
        return f"{min(values):.0f}" if round(min(values)) == round(max(values)) else \
            f"{min(values):.0f}–{max(values):.0f}"

    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in report.listing:
        groups.setdefault((row["store"], row.get("cache", "off"), row["path"]), []).append(row)
    for (store, cache, path), rows in groups.items():
        # Cache on: the CPU of a kept first page (M1); off: every request a query (M2).
        small, large = min(r["size"] for r in rows), max(r["size"] for r in rows)
        sizes = f"{fmt_size(small)}{'' if small == large else '–' + fmt_size(large)} images"
        out.append(f"  listing CPU per request, {store}, cache {cache}, GET {path}: server "
                   f"{spread([r['cpu_us']['server'] for r in rows])} µs, PostgreSQL "
                   f"{spread([r['cpu_us']['postgres'] for r in rows])} µs ({sizes})")
    if report.listing_rss:
        out.append(f"  listing server peak resident memory under load: {max(report.listing_rss.values()):.1f} MiB "
                   "(list-images; catdog serve on SQLite)")
    cloud = report.pipeline.get("cloud")
    if cloud:
        out.append(f"  classify-image CPU per picture: {cloud['cpu_s'] / cloud['pictures'] * 1000:.1f} ms; "
                   f"throughput {cloud['per_s']:.1f} pictures/s on {os.cpu_count()} cores; "
                   f"peak resident memory {cloud['max_rss_mib']:.0f} MiB")
    p = report.pipeline
    if p.get("photos"):
        out.append(f"  catdog import (local mode) CPU per picture: {p['cpu_s'] / p['photos'] * 1000:.1f} ms; "
                   f"peak resident memory {p['max_rss_mib']:.0f} MiB")
    tract = report.classify.get("tract", {})
    if "inference" in tract:
        out.append(f"  tract inference alone, one thread: {tract['inference']:.1f} ms per picture")
    for name, figures in report.cold.items():
        out.append(f"  {name} cold start to first /healthz 200: {figures['healthz_ms']:.0f} ms")
    if len(out) == 2:
        out.append("  (none: the listing, pipeline, classify and cold parts did not run)")
    out.append("  not measured by this run: /api/v1/stats' PostgreSQL CPU and ingest-trigger's time per run "
               "(docs/COST.md, M3 and A1)")
    print("\n".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--only", default="listing,classify,pipeline,cold,sizes,page",
                        help="comma-separated parts to run")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    report = Report(MODES[args.mode])
    report.started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    wait_until_quiet()
    report.load_before = loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="catdog-bench-"))
    log(f"working in {workdir}")
    pg = None

    def done(part: str) -> None:
        # Written after every part, so a run cut short keeps what it measured.
        report.load_after = loadavg()
        write(report, args.out)
        log(f"{part} done")

    try:
        if "sizes" in parts:
            measure_sizes(report)
        if "listing" in parts or "cold" in parts:
            pg = Postgres()
            (workdir / "pg").mkdir()
        if "listing" in parts:
            report.commands.append("list-images (release) with DATABASE_URL=postgres://…/catdog_bench or "
                                   "sqlite://…/bench.db, seeded by bench/bench.py")
            measure_listing(report, pg, workdir / "pg")
            done("PostgreSQL listing")
            sqlite_dir = workdir / "sqlite"
            sqlite_dir.mkdir()
            measure_listing(report, Sqlite(sqlite_dir), sqlite_dir)
            done("SQLite listing")
        if "cold" in parts:
            if "listing" not in parts:
                with running("list-images", [str(binary("list-images"))],
                             {"DATABASE_URL": pg.url(), "MIGRATE_ON_START": "true",
                              "STORAGE_URL": f"file://{workdir}/pg/objects"}, workdir / "pg"):
                    pass
            measure_cold_start(report, pg.url(), workdir / "pg")
            done("cold start")
        if "pipeline" in parts:
            measure_pipeline(report, workdir)
            done("local pipeline")
            if pg is not None:
                measure_cloud_classify(report, pg.url(), workdir / "pg")
                done("cloud-shape classification")
        if "page" in parts:
            measure_page(report, workdir)
            done("page")
        if "classify" in parts:
            measure_classification(report)
            done("classification")
    finally:
        if pg is not None:
            with contextlib.suppress(subprocess.CalledProcessError):
                pg.close()
        report.load_after = loadavg()
        write(report, args.out)
        print_cost_inputs(report)
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
