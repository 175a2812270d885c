"""Readers for the files the consistency tests compare.

Each function returns plain Python data read from the repository:
Terraform (python-hcl2), cloudbuild.yaml (PyYAML, which yamllint brings), the
Dockerfile, docs/CONTRACTS.md and the Rust sources. Nothing here decides what
is right; the tests do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import hcl2
import yaml

# CATDOG_DEPLOY_REPO points the tests at a copy of the repository (the mutation
# tests in test_checks_catch.py break a copy and expect a failure).
REPO = Path(os.environ.get("CATDOG_DEPLOY_REPO") or Path(__file__).resolve().parents[2])
FUNCTIONS = ("list-images", "ingest-trigger", "classify-image")


# --- Terraform --------------------------------------------------------------


def _unquote(value: str) -> str:
    """python-hcl2 keeps string literals with their quotes: `"abc"` -> abc."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _plain(node):
    """Strips python-hcl2's quoting and bookkeeping keys from a parsed tree."""
    if isinstance(node, dict):
        return {
            _unquote(key): _plain(value)
            for key, value in node.items()
            if key not in ("__is_block__", "__comments__", "__inline_comments__")
        }
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


@dataclass
class Terraform:
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def of_type(self, kind: str) -> dict[str, dict]:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def resource(self, kind: str, name: str) -> dict:
        return self.resources[(kind, name)]


@cache
def terraform() -> Terraform:
    tf = Terraform()
    for path in sorted((REPO / "terraform").glob("*.tf")):
        text = path.read_text()
        tf.texts[path.name] = text
        parsed = _plain(hcl2.loads(text))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    tf.resources[(kind, name)] = body
        for block in parsed.get("locals", []):
            tf.locals.update(block)
        for block in parsed.get("output", []):
            tf.outputs.update(block)
        for block in parsed.get("variable", []):
            tf.variables.update(block)
    return tf


def block(body: dict, name: str) -> dict:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


APP_CONTAINER = "app"


def app_container(service_body: dict) -> dict:
    """A Cloud Run v2 service's own container: the only one, or the one named `app`
    (beside the Cloud SQL Auth Proxy sidecar), which must then come first:
    Terraform's ignore_changes names containers[0] and Cloud Build deploys `app`."""
    containers = block(service_body, "template")["containers"]
    if len(containers) == 1:
        return containers[0]
    named = [c for c in containers if c.get("name") == APP_CONTAINER]
    assert len(named) == 1, f"{len(containers)} containers and not exactly one named {APP_CONTAINER}"
    assert containers[0] is named[0], f"the {APP_CONTAINER} container must be containers[0]"
    return named[0]


def sidecars(service_body: dict) -> list[dict]:
    return [c for c in block(service_body, "template")["containers"] if c is not app_container(service_body)]


def container_env(service_body: dict) -> dict[str, object]:
    """Environment of a Cloud Run v2 service's app container: name -> value or secret reference."""
    container = app_container(service_body)
    env: dict[str, object] = {}
    entries = list(container.get("env", []))
    for dynamic in container.get("dynamic", []):
        if "env" in dynamic:
            entries.extend(dynamic["env"]["content"])
    for entry in entries:
        name = entry["name"]
        assert name not in env, f"{name} is set twice"
        if "value_source" in entry:
            ref = block(block(entry, "value_source"), "secret_key_ref")
            env[name] = {"secret": ref["secret"]}
        else:
            env[name] = entry.get("value")
    return env


def cloud_run_services() -> dict[str, dict]:
    """Deployed service name (e.g. list-images) -> resource body."""
    return {body["name"]: body for body in terraform().of_type("google_cloud_run_v2_service").values()}


def resource_address(expression: str) -> tuple[str, str, str]:
    """`${google_pubsub_topic.images.name}` -> ("google_pubsub_topic", "images", "name")."""
    match = re.fullmatch(r"\$\{(\w+)\.(\w+)(?:\[0\])?\.(\w+)\}", expression)
    assert match, f"not a plain reference to a resource attribute: {expression!r}"
    return match.group(1), match.group(2), match.group(3)


def run_url_reference(expression: str) -> tuple[str, str]:
    """`${local.run_url["classify-image"]}/pubsub/push` -> ("classify-image", "/pubsub/push")."""
    match = re.fullmatch(r'\$\{local\.run_url\["([a-z-]+)"\]\}(.*)', expression)
    assert match, f"not built from local.run_url: {expression!r}"
    return match.group(1), match.group(2)


# --- Cloud Build -------------------------------------------------------------


@cache
def cloudbuild() -> dict:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def cloudbuild_steps() -> dict[str, dict]:
    steps = cloudbuild()["steps"]
    ids = [step["id"] for step in steps]
    assert len(ids) == len(set(ids)), f"step ids repeat: {ids}"
    return {step["id"]: step for step in steps}


def builder(step: dict) -> str:
    """A step's builder image without tag or digest:
    `gcr.io/cloud-builders/docker:latest@sha256:...` -> gcr.io/cloud-builders/docker."""
    image = step["name"].split("@", 1)[0]
    repository, _, tag = image.rpartition(":")
    return repository if repository and "/" not in tag else image


def step_command(step: dict) -> list[str]:
    """The words a step runs: entrypoint and args, or the builder's own command and args."""
    words = [step["entrypoint"]] if "entrypoint" in step else []
    return words + [str(arg) for arg in step.get("args", [])]


def step_dependencies(step_id: str) -> set[str]:
    """Every step that must finish before `step_id` starts (transitively), by Cloud Build's rules."""
    steps = cloudbuild()["steps"]
    order = [step["id"] for step in steps]
    by_id = {step["id"]: step for step in steps}

    def direct(sid: str) -> set[str]:
        wait = by_id[sid].get("waitFor")
        if wait is None:  # no waitFor: waits for every earlier step
            return set(order[: order.index(sid)])
        return {w for w in wait if w != "-"}

    seen: set[str] = set()
    todo = list(direct(step_id))
    while todo:
        sid = todo.pop()
        if sid not in seen:
            seen.add(sid)
            todo.extend(direct(sid))
    return seen


# --- Dockerfile ----------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str]


@cache
def dockerfile_stages() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            current = Stage(name=match.group(2), base=match.group(1), lines=[])
            stages[current.name] = current
        elif current and line and not line.startswith("#"):
            current.lines.append(line)
    return stages


def dockerfile_env(target: str) -> dict[str, str]:
    """ENV set in a target and the stages it is built FROM."""
    stages = dockerfile_stages()
    env: dict[str, str] = {}
    chain = []
    stage = stages.get(target)
    while stage:
        chain.append(stage)
        stage = stages.get(stage.base)
    for stage in reversed(chain):
        for line in stage.lines:
            match = re.match(r"ENV\s+(\w+)=(\S+)", line)
            if match:
                env[match.group(1)] = match.group(2)
    return env


# --- The contract and the code -------------------------------------------------


@cache
def contract_text() -> str:
    return (REPO / "docs" / "CONTRACTS.md").read_text()


def _table_after(heading: str) -> list[list[str]]:
    text = contract_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            # `\|` inside a cell is a literal bar, not a column separator.
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows[1:]  # without the header row


def contract_settings() -> dict[str, set[str]]:
    """CONTRACTS.md's settings table: function -> names of the variables it reads."""
    read: dict[str, set[str]] = {name: set() for name in FUNCTIONS}
    for variable, _default, read_by in _table_after("## Settings"):
        name = variable.strip("`")
        if read_by.startswith("all"):
            readers = FUNCTIONS
        else:
            readers = [f for f in FUNCTIONS if re.search(rf"(?<![\w-]){f}(?![\w-])", read_by)]
        for reader in readers:
            read[reader].add(name)
    return read


def contract_routes() -> dict[str, set[str]]:
    """CONTRACTS.md's route table: function -> "METHOD /path" (query strings dropped)."""
    routes: dict[str, set[str]] = {name: {"GET /healthz", "GET /readyz"} for name in FUNCTIONS}
    for function, route, _notes in _table_after("## Routes"):
        function = function.strip("`")
        if function in routes:
            route = route.strip("`").split("?")[0]
            routes[function].add(route)
    return routes


CODE_SETTINGS_FILE = REPO / "README.md"
CODE_SETTINGS_TABLE = "the table between <!-- settings:start --> and <!-- settings:end -->"
BINARIES = FUNCTIONS + ("catdog",)


def code_settings() -> dict[str, set[str]] | None:
    """The settings table that `catdog settings` prints from the code, as README.md
    holds it (a cargo test keeps the two equal):

        <!-- settings:start -->
        | variable | default | read by | meaning |
        | --- | --- | --- | --- |
        | `PORT` | `8080` | list-images, ingest-trigger, classify-image, catdog | ... |
        <!-- settings:end -->

    Each binary declares its settings once, as clap arguments with their variable's
    name; the table is made from those declarations, so it says what each binary reads.
    Returns binary name -> variables it reads, or None when README.md has no table.
    """
    if not CODE_SETTINGS_FILE.exists():
        return None
    text = CODE_SETTINGS_FILE.read_text()
    table = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", text, re.DOTALL)
    if not table:
        return None
    read: dict[str, set[str]] = {name: set() for name in BINARIES}
    rows = [line for line in table.group(1).splitlines() if line.startswith("| `")]
    assert rows, f"{CODE_SETTINGS_FILE.name}: the settings table has no rows this parser understands"
    for row in rows:
        # `\|` inside a cell is a literal bar, not a column separator.
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        variable, read_by = cells[0].strip("`"), cells[2]
        readers = [name.strip() for name in read_by.split(",")]
        unknown = sorted(set(readers) - set(BINARIES))
        assert not unknown, f"{variable} is read by {unknown}, which are not binaries"
        for reader in readers:
            read[reader].add(variable)
    return read


def settings_read_by() -> tuple[str, dict[str, set[str]]]:
    """Which variables each function reads, from the code when it says so, else from the contract."""
    from_code = code_settings()
    if from_code is not None:
        return f"{CODE_SETTINGS_FILE.relative_to(REPO)} ({CODE_SETTINGS_TABLE}, made by `catdog settings`)", from_code
    return "docs/CONTRACTS.md (the code has no settings table yet)", contract_settings()


@cache
def rust_sources() -> dict[str, str]:
    sources = {}
    for root in ("shared", "functions", "cli"):
        for path in sorted((REPO / root).rglob("*.rs")):
            if "target" not in path.parts:
                sources[str(path.relative_to(REPO))] = path.read_text()
    return sources


def rust_routes_registered() -> bool:
    """True once the Rust code registers any axum route."""
    return any(".route(" in text for text in rust_sources().values())


def rust_mentions(literal: str) -> list[str]:
    """Rust files that contain `literal` as a string literal."""
    needle = f'"{literal}"'
    return [path for path, text in rust_sources().items() if needle in text]
