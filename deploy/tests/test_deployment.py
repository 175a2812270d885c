"""What a first deployment on a fresh project needs, and what keeps later ones quiet.

Each test names a way `terraform apply` or the first Cloud Build run fails (or
misbehaves) on a fresh project although the files look fine:
  - a gcloud storage command in cloudbuild.yaml needs a permission its service
    account does not hold on that bucket;
  - a resource is created before the API it needs is enabled;
  - a builder or base image is pulled by a tag, or Node is past its end of life;
  - a substitution used only inside another one makes Cloud Build refuse the build;
  - a Cloud Build deploy leaves something Terraform would roll back on the next
    apply (the revision name; provider issue 13410);
  - the page is built for the wrong base path;
  - the database: who may log in as what, connection budget and pool sizes.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest

from sources import (
    FUNCTIONS,
    REPO,
    app_container,
    block,
    builder,
    cloud_run_services,
    cloudbuild,
    cloudbuild_steps,
    container_env,
    dockerfile_stages,
    sidecars,
    step_command,
    terraform,
)

# --- Cloud Storage: commands against the permissions their account holds ------------

# What each predefined role grants on a bucket, as far as the commands below
# care (https://cloud.google.com/storage/docs/access-control/iam-roles).
ROLE_PERMISSIONS = {
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list"},
    "roles/storage.objectCreator": {"storage.objects.create"},
    "roles/storage.objectUser": {
        "storage.objects.create", "storage.objects.delete", "storage.objects.get",
        "storage.objects.list", "storage.objects.update",
    },
    "roles/storage.objectAdmin": {
        "storage.objects.create", "storage.objects.delete", "storage.objects.get",
        "storage.objects.list", "storage.objects.update",
        "storage.objects.getIamPolicy", "storage.objects.setIamPolicy",
    },
    "roles/storage.legacyBucketReader": {"storage.buckets.get", "storage.objects.list"},
    "roles/storage.legacyBucketWriter": {
        "storage.buckets.get", "storage.objects.create", "storage.objects.delete", "storage.objects.list",
    },
    "roles/storage.legacyBucketOwner": {
        "storage.buckets.get", "storage.buckets.update", "storage.objects.create",
        "storage.objects.delete", "storage.objects.list",
    },
    "roles/storage.legacyObjectReader": {"storage.objects.get"},
}

# What each gcloud storage command needs on the destination (or only) bucket.
# rsync reads the bucket's metadata first (storage.buckets.get), lists and
# reads objects to compare, and replaces an object by writing it anew.
COMMAND_PERMISSIONS = {
    "rsync": {"storage.buckets.get", "storage.objects.list", "storage.objects.get",
              "storage.objects.create", "storage.objects.delete"},
    "cp": {"storage.objects.create", "storage.objects.delete"},
    "mv": {"storage.objects.create", "storage.objects.delete", "storage.objects.get"},
    "rm": {"storage.objects.delete", "storage.objects.list"},
    "ls": {"storage.objects.list"},
    "cat": {"storage.objects.get"},
    "objects": {"storage.objects.get", "storage.objects.update"},
    "buckets": {"storage.buckets.get"},
}

# Cloud Build runs as this account (README: --service-account=deployer_service_account).
BUILD_ACCOUNT = "${google_service_account.deployer.member}"


def substitution_buckets() -> dict[str, str]:
    """Cloud Build substitution -> the Terraform bucket resource name it carries."""
    value = terraform().outputs["cloud_build_substitutions"]["value"]
    found = {}
    for name, expression in re.findall(r'"(_[A-Z_]+)=(.*?)"', value):
        match = re.fullmatch(r"\$\{google_storage_bucket\.(\w+)\.name\}", expression)
        if match:
            found[name] = match.group(1)
    return found


def storage_commands() -> list[tuple[str, str, str]]:
    """(step id, verb, bucket resource) for every `gcloud storage` command writing to or reading a gs:// URL."""
    buckets = substitution_buckets()
    found = []
    for sid, step in cloudbuild_steps().items():
        script = " ".join(step_command(step))
        for command in re.findall(r"gcloud storage (.*?)(?:\n|;|&&|$)", script.replace("\\\n", " "), re.DOTALL):
            verb = command.split()[0]
            for substitution in re.findall(r"gs://\$\{(_[A-Z_]+)\}", command):
                assert substitution in buckets, f"{sid}: gs://${{{substitution}}} is not a bucket Terraform outputs"
                found.append((sid, verb, buckets[substitution]))
    return found


def roles_on_bucket(bucket: str, member: str) -> set[str]:
    roles = set()
    for body in terraform().of_type("google_storage_bucket_iam_member").values():
        if body["bucket"] != f"${{google_storage_bucket.{bucket}.name}}" or body["member"] != member:
            continue
        if body["role"] == "${each.value}":
            roles |= set(re.findall(r'"(roles/[\w.]+)"', str(body["for_each"])))
        else:
            roles.add(body["role"])
    return roles


def test_cloud_build_publishes_with_gcloud_storage():
    assert storage_commands(), "no gcloud storage command found in cloudbuild.yaml: has the page publishing moved?"


def test_every_storage_command_has_the_permissions_it_needs():
    for sid, verb, bucket in storage_commands():
        assert verb in COMMAND_PERMISSIONS, f"{sid}: add `gcloud storage {verb}` to COMMAND_PERMISSIONS"
        roles = roles_on_bucket(bucket, BUILD_ACCOUNT)
        unknown = roles - set(ROLE_PERMISSIONS)
        assert not unknown, f"add {sorted(unknown)} to ROLE_PERMISSIONS"
        held = set().union(*(ROLE_PERMISSIONS[r] for r in roles)) if roles else set()
        missing = sorted(COMMAND_PERMISSIONS[verb] - held)
        assert not missing, (
            f"{sid}: `gcloud storage {verb}` on bucket {bucket} needs {missing}, "
            f"which the deployer's roles there ({sorted(roles)}) do not grant"
        )


def test_list_images_has_no_role_on_the_images_bucket():
    roles = roles_on_bucket("images", "${google_service_account.list_images.member}")
    assert not roles, f"list-images reads no object, yet holds {sorted(roles)} on the images bucket"


# --- APIs: nothing is created before the API it needs ----------------------------------

API_OF = {
    "google_service_account": "iam.googleapis.com",
    "google_sql_": "sqladmin.googleapis.com",
    "google_cloud_run_v2_": "run.googleapis.com",
    "google_pubsub_": "pubsub.googleapis.com",
    "google_secret_manager_": "secretmanager.googleapis.com",
    "google_artifact_registry_": "artifactregistry.googleapis.com",
    "google_cloud_scheduler_": "cloudscheduler.googleapis.com",
    "google_compute_": "compute.googleapis.com",
    "google_monitoring_": "monitoring.googleapis.com",
    "google_storage_": "storage.googleapis.com",
}
# Served by the APIs the README has you enable with gcloud before `terraform apply`
# (serviceusage, cloudresourcemanager); Terraform cannot enable those itself.
PREREQUISITE_TYPES = {"google_project_service", "google_project_iam_member"}


def api_of(kind: str) -> str | None:
    for prefix, api in API_OF.items():
        if kind.startswith(prefix):
            return api
    return None


def references(node) -> set[tuple[str, str]]:
    text = json.dumps(node)
    return set(re.findall(r"\b(google_[a-z0-9_]+)\.([a-z0-9_]+)\b", text))


def local_references(node) -> set[str]:
    return set(re.findall(r"\blocal\.(\w+)", json.dumps(node)))


def test_every_resource_waits_for_its_api():
    tf = terraform()
    apis = set(tf.locals["apis"])
    enabled = ("google_project_service", "enabled")
    resources = tf.resources

    def refs(body) -> set[tuple[str, str]]:
        found = {r for r in references(body) if r in resources}
        seen, todo = set(), list(local_references(body))
        while todo:
            name = todo.pop()
            if name in seen or name not in tf.locals:
                continue
            seen.add(name)
            found |= {r for r in references(tf.locals[name]) if r in resources}
            todo.extend(local_references(tf.locals[name]))
        return found

    waits: dict[tuple[str, str], bool] = {}

    def waits_for_apis(address, trail=()) -> bool:
        if address == enabled:
            return True
        if address in waits:
            return waits[address]
        if address in trail:
            return False
        result = any(waits_for_apis(r, trail + (address,)) for r in refs(resources[address]) if r != address)
        waits[address] = result
        return result

    problems = []
    for (kind, name), body in resources.items():
        if kind in PREREQUISITE_TYPES or not kind.startswith("google_"):
            continue
        api = api_of(kind)
        assert api, f"{kind}.{name}: add its API to API_OF"
        if api not in apis:
            problems.append(f"{kind}.{name} needs {api}, which local.apis does not enable")
        elif not waits_for_apis((kind, name)):
            problems.append(
                f"{kind}.{name} does not depend on google_project_service.enabled (depends_on, or a resource that does): "
                f"on a fresh project it races the enabling of {api}"
            )
    assert not problems, "\n".join(problems)


# --- images: pinned by digest, Node on a supported LTS -------------------------------

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Node.js LTS lines and their end of life (https://nodejs.org/en/about/previous-releases).
NODE_END_OF_LIFE = {20: "2026-04-30", 22: "2027-04-30", 24: "2028-04-30"}


def external_bases() -> dict[str, str]:
    stages = dockerfile_stages()
    return {name: stage.base for name, stage in stages.items() if stage.base not in stages}


def test_dockerfile_bases_are_pinned_by_digest():
    bases = external_bases()
    assert bases, "the Dockerfile has no FROM lines this parser understands"
    text = (REPO / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE | re.IGNORECASE)
    stages = dockerfile_stages()
    unpinned = [base for base in froms if base not in stages and not DIGEST.search(base)]
    # A BuildKit frontend named by a `# syntax=` directive is pulled too.
    unpinned += [f"# syntax={image}" for image in re.findall(r"^#\s*syntax=(\S+)", text, re.MULTILINE) if not DIGEST.search(image)]
    assert not unpinned, f"Dockerfile bases pulled by tag, not digest: {unpinned} (update with deploy/pin-images.sh)"


def test_cloud_build_images_are_pinned_by_digest():
    unpinned = sorted({step["name"] for step in cloudbuild()["steps"] if not DIGEST.search(step["name"])})
    assert not unpinned, f"Cloud Build steps run images by tag, not digest: {unpinned} (update with deploy/pin-images.sh)"


def test_node_is_a_supported_lts():
    today = datetime.date.today()
    for step in cloudbuild()["steps"]:
        match = re.match(r"(?:docker\.io/library/)?node:(\d+)", step["name"])
        if not match:
            continue
        major = int(match.group(1))
        assert major in NODE_END_OF_LIFE, f"{step['id']}: node {major} is not an LTS line"
        end = datetime.date.fromisoformat(NODE_END_OF_LIFE[major])
        assert today < end, f"{step['id']}: node {major} reached its end of life on {end}"


def test_sidecar_images_are_pinned_to_a_release():
    image = terraform().locals["cloud_sql_proxy_image"]
    assert re.search(r":\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$", image), f"the proxy image is not pinned: {image}"


# --- Cloud Build substitutions ---------------------------------------------------------


def test_substitutions_used_only_inside_others_are_allowed():
    config = cloudbuild()
    declared = config["substitutions"]
    steps_text = json.dumps(config["steps"])
    only_nested = sorted(
        name for name in declared
        if f"${{{name}}}" not in steps_text and f"${name}" not in steps_text
        and any(f"${{{name}}}" in str(value) for other, value in declared.items() if other != name)
    )
    if only_nested:
        assert config.get("options", {}).get("substitutionOption") == "ALLOW_LOOSE", (
            f"{only_nested} are used only inside other substitutions; Cloud Build may refuse the build as having "
            "unmatched substitutions: set options.substitutionOption: ALLOW_LOOSE or use them directly"
        )
        assert config["options"].get("dynamicSubstitutions") is True, "nested substitutions need dynamicSubstitutions"


# --- Terraform after a Cloud Build deploy ------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_terraform_ignores_what_gcloud_run_deploy_changes(function):
    body = cloud_run_services()[function]
    ignored = {str(path).strip("${}") for path in block(body, "lifecycle")["ignore_changes"]}
    for path in (
        "template[0].containers[0].image",
        "template[0].revision",
        "template[0].annotations",
        "annotations",
        "client",
        "client_version",
    ):
        assert path in ignored, (
            f"{function}: Terraform does not ignore {path}, which each `gcloud run deploy` changes; "
            "every later apply would roll a new revision"
        )
    app = app_container(body)
    assert block(body, "template")["containers"][0] is app, "the container Terraform ignores is not the app"
    assert "annotations" not in body and "annotations" not in block(body, "template"), (
        f"{function}: Terraform sets annotations it also ignores"
    )


def test_cloud_build_deploys_the_app_container():
    for sid, step in cloudbuild_steps().items():
        words = step_command(step)
        if words[:3] != ["gcloud", "run", "deploy"]:
            continue
        service = cloud_run_services()[words[3]]
        if sidecars(service):
            assert "--container=app" in words, f"{sid}: a service with a sidecar needs --container=app before --image"


# --- the page's base path ------------------------------------------------------------------


def test_page_is_built_for_the_path_it_is_served_under():
    tf = terraform()
    base = tf.locals["page_base_path"]
    assert base == '${local.cdn_enabled ? "" : "/${google_storage_bucket.website.name}"}', base
    assert "storage.googleapis.com/${google_storage_bucket.website.name}/" in tf.locals["gallery_url"]
    given = dict(re.findall(r'"(_[A-Z_]+)=(.*?)"', tf.outputs["cloud_build_substitutions"]["value"]))
    assert given.get("_BASE_PATH") == "${local.page_base_path}", "Terraform does not give Cloud Build the page's base path"
    env = cloudbuild_steps()["build-page"].get("env", [])
    assert "BASE_PATH=${_BASE_PATH}" in env, "the page is built without BASE_PATH"


def test_frontend_reads_the_base_path():
    config = (REPO / "frontend" / "svelte.config.js").read_text()
    assert re.search(r"paths\s*:\s*\{[^}]*base\s*:\s*process\.env\.BASE_PATH", config, re.DOTALL)


# --- the database -----------------------------------------------------------------------------

DEFAULT_TIER_CONNECTIONS = 25  # db-f1-micro


def variable_default(name: str):
    return terraform().variables[name]["default"]


def evaluate_count(expression) -> int:
    if isinstance(expression, int):
        return expression
    match = re.fullmatch(r"\$\{var\.(\w+)\}", str(expression))
    assert match, f"cannot evaluate {expression!r}"
    return int(variable_default(match.group(1)))


def test_connection_budget_fits_with_a_rollout_and_the_migration():
    tf = terraform()
    pools = tf.locals["database_pool_size"]
    listeners = tf.locals["database_listeners"]
    # list-images' change feed LISTENs on one connection outside its pool
    # (shared/store/src/pg_listen.rs); the others open none.
    assert listeners == {"list-images": 1, "ingest-trigger": 0, "classify-image": 0}
    instances = {name: evaluate_count(value) for name, value in tf.locals["database_max_instances"].items()}
    assert set(instances) == set(FUNCTIONS)
    assert variable_default("database_tier") == "db-f1-micro"
    assert variable_default("database_max_connections") == DEFAULT_TIER_CONNECTIONS
    available = DEFAULT_TIER_CONNECTIONS - 3
    steady = sum(instances[name] * (pools[name] + listeners[name]) for name in FUNCTIONS)
    peak = max(2 * steady, steady + pools["migrate"]) + 1
    assert peak <= available, f"at peak (rollout or migration, plus one operator) {peak} connections > {available}"
    text = tf.texts["run.tf"]
    assert f"= {peak} <= {available}" in text, f"run.tf's comment does not state the budget's result ({peak} <= {available})"
    precondition = tf.texts["database.tf"]
    assert "local.database_connections.peak <= local.database_connections.available" in precondition


@pytest.mark.parametrize("function", FUNCTIONS)
def test_pool_sizes_and_instances_come_from_the_budget(function):
    body = cloud_run_services()[function]
    env = container_env(body)
    assert env["DATABASE_POOL_SIZE"] == f'${{tostring(local.database_pool_size["{function}"])}}'
    scaling = block(block(body, "template"), "scaling")
    assert scaling["max_instance_count"] == f'${{local.database_max_instances["{function}"]}}'
    proxies = [c for c in sidecars(body) if c.get("name") == "cloud-sql-proxy"]
    assert len(proxies) == 1, f"{function} has no Cloud SQL Auth Proxy sidecar"
    args = proxies[0]["args"]
    # The proxy must let through the pool and the listener, or it refuses
    # the pool's last connection.
    assert f'--max-connections=${{local.database_connections_per_instance["{function}"]}}' in args
    assert "--auto-iam-authn" in args, f"{function}'s proxy does not log in with IAM"


def test_migration_job_pool_comes_from_the_budget():
    job = next(iter(terraform().of_type("google_cloud_run_v2_job").values()))
    container = block(block(block(job, "template"), "template"), "containers")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DATABASE_POOL_SIZE"] == '${tostring(local.database_pool_size["migrate"])}'


def test_each_service_logs_in_as_itself():
    tf = terraform()
    users = tf.locals["database_iam_users"]
    for function in FUNCTIONS:
        account = function.replace("-", "_")
        assert users[function] == f'${{trimsuffix(google_service_account.{account}.email, ".gserviceaccount.com")}}'
    workload = tf.resource("google_sql_user", "workload")
    assert workload["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
    settings = block(tf.resource("google_sql_database_instance", "main"), "settings")
    flags = {flag["name"]: flag["value"] for flag in settings["database_flags"]}
    assert flags.get("cloudsql.iam_authentication") == "on"
    assert settings.get("connector_enforcement") == "REQUIRED"


def test_only_the_migration_job_reads_the_owner_password():
    readers = [
        body["member"]
        for body in terraform().of_type("google_secret_manager_secret_iam_member").values()
        if body["secret_id"] == "${google_secret_manager_secret.database_url.id}"
    ]
    assert readers == ["${google_service_account.migrate.member}"], f"the owner's DATABASE_URL is readable by {readers}"
