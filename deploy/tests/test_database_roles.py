"""Database roles by workload, on a real PostgreSQL.

Applies shared/store/src/migrations/postgres/*.sql in order, the way the Rust
store does (one transaction, after creating schema_migrations), as an owner
that is not a superuser but may create roles (like Cloud SQL's `catdog`
user), to a throwaway database. The services' login roles exist beforehand,
named like Cloud SQL's IAM database users (Terraform creates them before the
first migration runs). Then, with each service's identity
(SET SESSION AUTHORIZATION), it proves:
  - list-images (catdog_reader) reads, and cannot INSERT, UPDATE, DELETE,
    TRUNCATE or CREATE;
  - ingest-trigger and classify-image (catdog_writer) run the kinds of
    statement their code runs (INSERT, UPDATE, SELECT ... FOR UPDATE, upsert,
    identity insert), and cannot DELETE, TRUNCATE, ALTER, DROP or CREATE;
  - migrating a second database on the same server (roles already exist) works.

PostgreSQL: TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres,
as a superuser. Uses psql. With CI=true a missing server or psql fails the
test; otherwise it is skipped. Databases and login roles it made are dropped
afterwards; the two group roles stay (they belong to the whole server and
other databases on it may use them).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "shared" / "store" / "src" / "migrations" / "postgres"
REGISTRY = REPO / "shared" / "store" / "src" / "postgres.rs"
URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def psql_env(database: str | None = None) -> dict[str, str]:
    url = urlparse(URL)
    env = dict(os.environ)
    env.update(
        PGHOST=url.hostname or "127.0.0.1",
        PGPORT=str(url.port or 5432),
        PGUSER=unquote(url.username or "postgres"),
        PGDATABASE=database or (url.path.lstrip("/") or "postgres"),
        PGCONNECT_TIMEOUT="5",
    )
    if url.password:
        env["PGPASSWORD"] = unquote(url.password)
    return env


def psql(sql: str, database: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=psql_env(database),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed ({result.returncode}) on {sql!r}: {result.stderr.strip()}")
    return result


def registered_migrations() -> list[Path]:
    """The migration files in the order postgres.rs registers them; each file must be registered."""
    text = REGISTRY.read_text()
    entries = re.findall(r'\(\s*(\d+),\s*include_str!\("migrations/postgres/([^"]+)"\)', text)
    assert entries, f"no migrations found in {REGISTRY}"
    versions = [int(v) for v, _ in entries]
    assert versions == sorted(versions), f"migrations are not registered in order: {versions}"
    files = [MIGRATIONS / name for _, name in entries]
    on_disk = sorted(MIGRATIONS.glob("*.sql"))
    assert sorted(files) == on_disk, f"registered {[f.name for f in files]}, on disk {[f.name for f in on_disk]}"
    return files


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("psql") is None:
        unavailable("psql is not installed (apt-get install postgresql-client)")
    probe = subprocess.run(
        ["psql", "-X", "-A", "-t", "-c", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"],
        env=psql_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        unavailable(f"no PostgreSQL at {urlparse(URL).hostname}:{urlparse(URL).port or 5432}: {probe.stderr.strip()}")
    assert probe.stdout.strip() == "t", "TEST_DATABASE_URL must name a superuser (it creates databases and roles)"

    tag = secrets.token_hex(4)
    names = {
        "owner": f"catdog_owner_{tag}",
        "list-images": f"list-images@roles-test-{tag}.iam",
        "ingest-trigger": f"ingest-trigger@roles-test-{tag}.iam",
        "classify-image": f"classify-image@roles-test-{tag}.iam",
    }
    databases = [f"catdog_roles_{tag}", f"catdog_roles_{tag}_again"]
    try:
        # Like Cloud SQL's users: may log in and create roles and databases; not a superuser.
        psql(f"CREATE ROLE {ident(names['owner'])} LOGIN CREATEROLE CREATEDB")
        for workload in ("list-images", "ingest-trigger", "classify-image"):
            psql(f"CREATE ROLE {ident(names[workload])} LOGIN")
        for database in databases:
            psql(f"CREATE DATABASE {ident(database)} OWNER {ident(names['owner'])}")
            migrate(database, names["owner"])
        yield databases[0], names
    finally:
        for database in databases:
            psql(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE)", check=False)
        for name in names.values():
            psql(f"DROP ROLE IF EXISTS {ident(name)}", check=False)


def migrate(database: str, owner: str):
    """What PostgresStore::migrate does, as the owner: one transaction, every registered migration."""
    script = [
        f"SET SESSION AUTHORIZATION {ident(owner)};",
        "BEGIN;",
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version bigint PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp());",
    ]
    for path in registered_migrations():
        version = int(path.name.split("_", 1)[0])
        script.append(path.read_text())
        script.append(f"INSERT INTO schema_migrations (version) VALUES ({version});")
    script.append("COMMIT;")
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input="\n".join(script),
        env=psql_env(database),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"migrating {database} as {owner} failed: {result.stderr.strip()}"


def as_role(database: str, role: str, sql: str) -> subprocess.CompletedProcess:
    return psql(f"SET SESSION AUTHORIZATION {ident(role)}; {sql}", database=database, check=False)


def assert_allowed(database: str, role: str, sql: str):
    result = as_role(database, role, f"BEGIN; {sql}; ROLLBACK;")
    assert result.returncode == 0, f"{role} must be allowed {sql!r}: {result.stderr.strip()}"


def assert_refused(database: str, role: str, sql: str):
    result = as_role(database, role, f"BEGIN; {sql}; ROLLBACK;")
    assert result.returncode != 0, f"{role} was allowed {sql!r}"
    assert re.search(r"permission denied|must be owner|must be a member", result.stderr), (
        f"{role}: {sql!r} failed, but not for lack of privilege: {result.stderr.strip()}"
    )


NEW_IMAGE = (
    "INSERT INTO images (id, sha256, source, object_name, content_type, byte_size, created_at) "
    "VALUES (gen_random_uuid(), md5(random()::text), 'test', 'originals/x', 'image/jpeg', 1, now())"
)

READS = [
    "SELECT count(*) FROM images",
    "SELECT cat_count, dog_count, other_count, gallery_seq FROM gallery_state WHERE id = 1",
    "SELECT * FROM source_status",
    "SELECT * FROM ingest_runs",
    "SELECT version FROM schema_migrations",
]

WRITER_STATEMENTS = [
    NEW_IMAGE,
    "UPDATE images SET published_at = now(), publishes = publishes + 1 WHERE id = gen_random_uuid()",
    "SELECT status FROM images WHERE id = gen_random_uuid() FOR UPDATE",
    "UPDATE gallery_state SET gallery_seq = gallery_seq + 1, cat_count = cat_count + 1 WHERE id = 1",
    "INSERT INTO ingest_runs (started_at, finished_at, fetched, stored, duplicates, published, errors) "
    "VALUES (now(), now(), 0, 0, 0, 0, '[]')",
    "INSERT INTO source_status (name, last_success_at) VALUES ('dogceo', now()) "
    "ON CONFLICT (name) DO UPDATE SET last_success_at = EXCLUDED.last_success_at",
    "UPDATE images SET status = 'failed' WHERE status = 'pending' AND id IN "
    "(SELECT id FROM images ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)",
]

SCHEMA_CHANGES = [
    "CREATE TABLE intruder (x int)",
    "ALTER TABLE images ADD COLUMN intruder int",
    "DROP TABLE images",
    "CREATE INDEX intruder ON images (source)",
    "TRUNCATE images",
    "CREATE ROLE intruder",
]


def test_group_roles_exist_without_login(cluster):
    database, _ = cluster
    rows = psql(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN ('catdog_reader', 'catdog_writer') ORDER BY 1",
        database=database,
    ).stdout.split()
    assert rows == ["catdog_reader|f", "catdog_writer|f"]


def test_workloads_joined_their_groups(cluster):
    database, names = cluster
    for workload, group in (
        ("list-images", "catdog_reader"),
        ("ingest-trigger", "catdog_writer"),
        ("classify-image", "catdog_writer"),
    ):
        member = psql(f"SELECT pg_has_role('{names[workload]}', '{group}', 'MEMBER')", database=database).stdout.strip()
        assert member == "t", f"{workload} is not a member of {group}"
    assert psql(f"SELECT pg_has_role('{names['list-images']}', 'catdog_writer', 'MEMBER')", database=database).stdout.strip() == "f"


def test_list_images_reads(cluster):
    database, names = cluster
    for sql in READS:
        assert_allowed(database, names["list-images"], sql)


@pytest.mark.parametrize(
    "sql",
    [
        NEW_IMAGE,
        "UPDATE gallery_state SET gallery_seq = gallery_seq + 1 WHERE id = 1",
        "DELETE FROM images",
        "INSERT INTO source_status (name) VALUES ('x')",
        "SELECT status FROM images FOR UPDATE",
        *SCHEMA_CHANGES,
    ],
)
def test_list_images_cannot_write(cluster, sql):
    database, names = cluster
    assert_refused(database, names["list-images"], sql)


@pytest.mark.parametrize("workload", ["ingest-trigger", "classify-image"])
def test_writers_run_their_statements(cluster, workload):
    database, names = cluster
    for sql in READS + WRITER_STATEMENTS:
        assert_allowed(database, names[workload], sql)


@pytest.mark.parametrize("workload", ["ingest-trigger", "classify-image"])
@pytest.mark.parametrize("sql", ["DELETE FROM images", *SCHEMA_CHANGES])
def test_writers_cannot_delete_or_change_the_schema(cluster, workload, sql):
    database, names = cluster
    assert_refused(database, names[workload], sql)


def test_owner_still_owns_the_schema(cluster):
    database, names = cluster
    owners = set(psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", database=database).stdout.split())
    assert owners == {names["owner"]}
