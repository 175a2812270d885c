"""Terraform, cloudbuild.yaml and the Dockerfile against the code and docs/CONTRACTS.md.

Each test names a way the deployment can drift from what the functions
expect; when one fails, the deployed gallery would be broken in the way its
name says, although `terraform apply` and the build would both succeed.
"""

from __future__ import annotations

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
    contract_routes,
    contract_settings,
    dockerfile_env,
    dockerfile_stages,
    resource_address,
    run_url_reference,
    rust_mentions,
    rust_routes_registered,
    settings_read_by,
    step_command,
    step_dependencies,
    terraform,
)

# Settings a function reads that the cloud deployment rightly leaves at their
# defaults, each with the reason. Anything else a function reads must be set.
LEFT_AT_DEFAULT = {
    "PORT": "Cloud Run sets it from the container port (and refuses it as an env var)",
    "STORAGE_ENDPOINT": "the default is Google's endpoint; only tests point it elsewhere",
    "PUBSUB_ENDPOINT": "the default is Google's endpoint; only tests point it elsewhere",
    "OIDC_JWKS_URL": "the default is Google's published keys",
    "THECATAPI_BASE_URL": "the default is the real API",
    "DOGCEO_BASE_URL": "the default is the real API",
    "THECATAPI_KEY": "optional; set from Secret Manager only when var.thecatapi_key is given",
    "MAX_CONNECTIONS": "derived from the container's open-file limit; Cloud Run's own request concurrency caps requests first",
}

# Cloud Run rejects these as container environment variables.
RESERVED_BY_CLOUD_RUN = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}

# Project-wide grants made only because Google offers no narrower binding.
PROJECT_ROLES_WITHOUT_RESOURCE_BINDING = {
    "roles/cloudsql.client": "Cloud SQL has no instance-level IAM",
    "roles/logging.logWriter": "log writing has no narrower scope than the project",
    "roles/cloudsql.instanceUser": "IAM database login, like the connection, has no instance-level IAM",
}

CALLERS = {
    # function -> (service account resource that calls it, the Terraform resource that sends the token)
    "ingest-trigger": "scheduler",
    "classify-image": "pubsub_push",
}


def service(name: str) -> dict:
    services = cloud_run_services()
    assert name in services, f"Terraform deploys no Cloud Run service named {name}; it has {sorted(services)}"
    return services[name]


def push_subscription() -> dict:
    subscriptions = [
        body for body in terraform().of_type("google_pubsub_subscription").values() if "push_config" in body
    ]
    assert len(subscriptions) == 1, f"expected exactly one push subscription, found {len(subscriptions)}"
    return subscriptions[0]


def scheduler_job() -> dict:
    jobs = list(terraform().of_type("google_cloud_scheduler_job").values())
    assert len(jobs) == 1, f"expected exactly one Cloud Scheduler job, found {len(jobs)}"
    return jobs[0]


# --- settings -------------------------------------------------------------------


def test_settings_source_names_every_function():
    source, read_by = settings_read_by()
    print(f"settings read by each function come from {source}")
    for function in FUNCTIONS:
        assert read_by.get(function), f"{source} lists no settings for {function}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_setting_a_function_reads_is_set_for_its_service(function):
    source, read_by = settings_read_by()
    env = container_env(service(function))
    image_env = dockerfile_env(function)
    missing = sorted(
        name for name in read_by[function] if name not in env and name not in image_env and name not in LEFT_AT_DEFAULT
    )
    assert not missing, (
        f"{function} reads {missing} (per {source}) but neither Terraform nor its image sets them, "
        f"and none is in LEFT_AT_DEFAULT"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_service_sets_a_variable_its_function_ignores(function):
    source, read_by = settings_read_by()
    env = container_env(service(function))
    unknown = sorted(set(env) - read_by[function])
    assert not unknown, f"Terraform sets {unknown} on {function}, which it does not read (per {source}): a typo?"
    reserved = sorted(set(env) & RESERVED_BY_CLOUD_RUN)
    assert not reserved, f"Cloud Run refuses {reserved} as environment variables"


def test_defaults_left_alone_are_real_settings():
    _, read_by = settings_read_by()
    everything = set().union(*read_by.values())
    stale = sorted(set(LEFT_AT_DEFAULT) - everything)
    assert not stale, f"LEFT_AT_DEFAULT names {stale}, which no function reads any more"


def test_code_settings_agree_with_the_contract():
    source, read_by = settings_read_by()
    if source.startswith("docs/CONTRACTS.md"):
        # Nothing to compare yet: the contract is the only table. Still check it parsed.
        assert {"DATABASE_URL", "STORAGE_URL", "PORT"} <= read_by["classify-image"]
        return
    contract = contract_settings()
    for function in FUNCTIONS:
        assert read_by[function] == contract[function], (
            f"{function}: code reads {sorted(read_by[function] - contract[function])} not in CONTRACTS.md, "
            f"CONTRACTS.md lists {sorted(contract[function] - read_by[function])} the code does not read"
        )


def test_secrets_come_from_secret_manager():
    for function in FUNCTIONS:
        env = container_env(service(function))
        if "THECATAPI_KEY" in env:
            assert isinstance(env["THECATAPI_KEY"], dict) and "secret" in env["THECATAPI_KEY"], (
                f"{function} gets THECATAPI_KEY as plain text; it must come from Secret Manager"
            )
        # DATABASE_URL is plain only when it holds no password (IAM database login).
        url = env["DATABASE_URL"]
        if not isinstance(url, dict):
            assert url == f'${{local.database_url["{function}"]}}', f"{function}: DATABASE_URL = {url!r}"
            template = terraform().locals["database_url"]
            assert re.search(r"postgres://\$\{urlencode\(user\)\}@/", template), (
                f"local.database_url is not a password-free URL: {template!r}"
            )


def test_storage_url_points_at_the_images_bucket():
    for function in FUNCTIONS:
        value = container_env(service(function))["STORAGE_URL"]
        assert value == "gs://${google_storage_bucket.images.name}", f"{function}: STORAGE_URL = {value!r}"


def test_migrations_run_as_a_job_not_on_start():
    jobs = {body["name"]: body for body in terraform().of_type("google_cloud_run_v2_job").values()}
    assert "catdog-migrate" in jobs, "no Cloud Run job catdog-migrate applies migrations"
    for function in FUNCTIONS:
        assert container_env(service(function)).get("MIGRATE_ON_START") == "false", (
            f"{function} would migrate on start while the job also migrates"
        )


# --- routes, callers and tokens ----------------------------------------------------


def assert_route_served(function: str, route: str):
    assert route in contract_routes()[function], f"CONTRACTS.md gives {function} no route {route}"
    path = route.split(" ", 1)[1]
    if rust_routes_registered():
        assert rust_mentions(path), f"no Rust source contains the path {path!r} that Terraform sends {route} to"


def test_push_endpoint_is_the_route_classify_image_serves():
    config = block(push_subscription(), "push_config")
    function, path = run_url_reference(config["push_endpoint"])
    assert function == "classify-image", f"Pub/Sub pushes to {function}"
    assert_route_served("classify-image", f"POST {path}")


def test_scheduler_calls_the_route_ingest_trigger_serves():
    target = block(scheduler_job(), "http_target")
    function, path = run_url_reference(target["uri"])
    assert function == "ingest-trigger", f"the Scheduler calls {function}"
    assert_route_served("ingest-trigger", f"{target['http_method']} {path}")


def test_startup_probes_ask_healthz():
    for function in FUNCTIONS:
        container = app_container(service(function))
        probe = block(block(container, "startup_probe"), "http_get")
        assert_route_served(function, f"GET {probe['path']}")


# Accounts that may call a private function's operator routes, by function.
OPERATORS = {"classify-image": ["deployer"]}


@pytest.mark.parametrize("function", sorted(CALLERS))
def test_private_functions_accept_exactly_their_caller(function):
    """The token the caller sends must pass both Cloud Run's IAM check and the function's own OIDC check."""
    caller_account = CALLERS[function]
    token_block = (
        block(block(push_subscription(), "push_config"), "oidc_token")
        if function == "classify-image"
        else block(block(scheduler_job(), "http_target"), "oidc_token")
    )
    assert token_block["service_account_email"] == f"${{google_service_account.{caller_account}.email}}"

    env = container_env(service(function))
    assert env.get("REQUIRE_OIDC") == "true", f"{function} does not require an identity token"
    # Besides its caller, classify-image lets the deployer correct verdicts
    # (PUT /images/{id}/category); nobody else.
    operators = OPERATORS.get(function, [])
    allowed = set(env.get("OIDC_ALLOWED_EMAILS", "").split(","))
    expected = {token_block["service_account_email"]} | {
        f"${{google_service_account.{account}.email}}" for account in operators
    }
    assert allowed == expected, f"{function} allows {allowed!r}, expected {expected!r}"
    assert env.get("OIDC_AUDIENCE") == token_block["audience"], (
        f"{function} expects audience {env.get('OIDC_AUDIENCE')!r}, its caller sends {token_block['audience']!r}"
    )
    audience_function, rest = run_url_reference(token_block["audience"])
    assert (audience_function, rest) == (function, ""), f"the token's audience is not {function}'s URL"

    invokers = [
        body
        for body in terraform().of_type("google_cloud_run_v2_service_iam_member").values()
        if body["role"] == "roles/run.invoker"
        and resource_address(body["name"])[:2] == ("google_cloud_run_v2_service", function.replace("-", "_"))
    ]
    members = {body["member"] for body in invokers}
    assert members == {f"${{google_service_account.{account}.member}}" for account in [caller_account, *operators]}, (
        f"{function} may be invoked by {members}, not only by its caller"
    )


def test_only_list_images_is_public():
    public = {
        resource_address(body["name"])[1]
        for body in terraform().of_type("google_cloud_run_v2_service_iam_member").values()
        if body["member"] in ("allUsers", "allAuthenticatedUsers")
    }
    assert public == {"list_images"}, f"publicly invokable services: {sorted(public)}"


# --- Pub/Sub ---------------------------------------------------------------------


def test_ingest_trigger_publishes_to_the_topic_classify_image_is_subscribed_to():
    env = container_env(service("ingest-trigger"))
    kind, topic, attribute = resource_address(env["PUBSUB_TOPIC"])
    assert (kind, attribute) == ("google_pubsub_topic", "name"), env["PUBSUB_TOPIC"]
    subscribed = resource_address(push_subscription()["topic"])
    assert subscribed[:2] == ("google_pubsub_topic", topic), (
        f"ingest-trigger publishes to {topic}, classify-image's subscription reads {subscribed[1]}"
    )
    publishers = [
        body
        for body in terraform().of_type("google_pubsub_topic_iam_member").values()
        if body["role"] == "roles/pubsub.publisher" and resource_address(body["topic"])[1] == topic
    ]
    assert any(body["member"] == "${google_service_account.ingest_trigger.member}" for body in publishers), (
        "ingest-trigger may not publish to its topic"
    )


def test_failed_messages_reach_a_watched_dead_letter_subscription():
    subscription = push_subscription()
    policy = block(subscription, "dead_letter_policy")
    assert policy["max_delivery_attempts"] == 5
    dead_topic = resource_address(policy["dead_letter_topic"])[1]
    assert dead_topic != resource_address(subscription["topic"])[1], "dead letters go back to the same topic"
    readers = [
        name
        for name, body in terraform().of_type("google_pubsub_subscription").items()
        if resource_address(body["topic"])[1] == dead_topic
    ]
    assert readers, "nobody subscribes to the dead-letter topic: dead letters would be lost"
    agent = "serviceAccount:${local.pubsub_service_agent}"
    roles = {
        (body["role"], resource_address(body.get("topic") or body.get("subscription"))[1])
        for kind in ("google_pubsub_topic_iam_member", "google_pubsub_subscription_iam_member")
        for body in terraform().of_type(kind).values()
        if body["member"] == agent
    }
    assert ("roles/pubsub.publisher", dead_topic) in roles, "the Pub/Sub agent cannot publish dead letters"
    assert ("roles/pubsub.subscriber", "classify_image_push") in roles, (
        "the Pub/Sub agent cannot acknowledge dead-lettered messages"
    )
    alerts = " ".join(
        body["conditions"][0]["condition_threshold"][0]["filter"]
        for body in terraform().of_type("google_monitoring_alert_policy").values()
        if "condition_threshold" in body["conditions"][0]
    )
    for reader in readers:
        assert f"google_pubsub_subscription.{reader}.name" in alerts, f"no alert watches {reader}"


# --- images: built by Cloud Build, deployed to the services Terraform made -------------


def option(words: list[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in a command."""
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def built_images() -> dict[str, str]:
    """Dockerfile target -> image tag, for each `docker build` step of a deployable image
    (not the layer-cache images under ${_IMAGE_BASE}/cache/)."""
    images = {}
    for step in cloudbuild_steps().values():
        words = step_command(step)
        if builder(step).endswith("/docker") and words[:1] == ["build"]:
            target, tag = option(words, "--target"), option(words, "--tag")
            if tag.startswith("${_IMAGE_BASE}/cache/"):
                continue
            images[target] = tag
    return images


def image_name(tag: str) -> str:
    match = re.fullmatch(r"\$\{_IMAGE_BASE\}/([a-z-]+):\$\{_COMMIT\}", tag)
    assert match, f"image {tag!r} is not ${{_IMAGE_BASE}}/<name>:${{_COMMIT}}"
    return match.group(1)


def test_cloudbuild_builds_every_image_target_of_the_dockerfile():
    stages = dockerfile_stages()
    targets = {name for name, stage in stages.items() if stage.base == "runtime"}
    assert targets == set(FUNCTIONS) | {"migrate"}, f"Dockerfile's image targets: {sorted(targets)}"
    built = built_images()
    assert set(built) == targets, f"Cloud Build builds {sorted(built)}, the Dockerfile has {sorted(targets)}"
    for target, tag in built.items():
        assert image_name(tag) == target, f"target {target} is tagged {tag}"


def test_images_are_pushed_after_the_tests_and_before_deployment():
    steps = cloudbuild_steps()
    pushed = {}
    for sid, step in steps.items():
        words = step_command(step)
        if builder(step).endswith("/docker") and words[:1] == ["push"]:
            pushed[image_name(words[1])] = sid
            assert "test" in step_dependencies(sid), f"{sid} may push before the tests pass"
    assert set(pushed) == set(built_images()), f"pushed {sorted(pushed)}, built {sorted(built_images())}"


def deploy_steps() -> dict[str, tuple[str, str]]:
    """Service name -> (step id, image tag) for each `gcloud run deploy` step."""
    deployed = {}
    for sid, step in cloudbuild_steps().items():
        words = step_command(step)
        if words[:3] == ["gcloud", "run", "deploy"]:
            image = next(w.split("=", 1)[1] for w in words if w.startswith("--image="))
            deployed[words[3]] = (sid, image)
    return deployed


def test_cloudbuild_deploys_each_image_to_the_service_terraform_created():
    deployed = deploy_steps()
    assert set(deployed) == set(cloud_run_services()), (
        f"Cloud Build deploys {sorted(deployed)}, Terraform creates {sorted(cloud_run_services())}"
    )
    for name, (sid, image) in deployed.items():
        assert image_name(image) == name, f"{sid} deploys the {image_name(image)} image to {name}"


def test_migration_job_runs_before_any_deployment():
    steps = cloudbuild_steps()
    job = next(iter(terraform().of_type("google_cloud_run_v2_job").values()))
    migrate_ids = [
        sid
        for sid, step in steps.items()
        if f"gcloud run jobs execute {job['name']}" in " ".join(step_command(step))
    ]
    assert len(migrate_ids) == 1, f"steps executing {job['name']}: {migrate_ids}"
    (migrate_id,) = migrate_ids
    script = " ".join(step_command(steps[migrate_id]))
    assert f'gcloud run jobs update {job["name"]}' in script
    assert '--image="${_IMAGE_BASE}/migrate:${_COMMIT}"' in script, "the job does not get this build's migrate image"
    assert "--wait" in script, "deployment would not wait for the migration to finish"
    for name, (sid, _image) in deploy_steps().items():
        assert migrate_id in step_dependencies(sid), f"{name} may take traffic before the migration ran"


def test_terraform_leaves_the_deployed_image_to_cloud_build():
    for name, body in cloud_run_services().items():
        ignored = block(body, "lifecycle")["ignore_changes"]
        assert "${template[0].containers[0].image}" in ignored or "template[0].containers[0].image" in " ".join(
            map(str, ignored)
        ), f"terraform apply would put the bootstrap image back on {name}"


def test_image_registry_is_the_same_in_terraform_and_cloud_build():
    tf = terraform()
    assert tf.locals["registry"] == (
        "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
    )
    assert cloudbuild()["substitutions"]["_IMAGE_BASE"] == "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}"
    given = substitutions_from_terraform()
    assert given["_REGION"] == "${var.region}"
    assert given["_REPOSITORY"] == "${google_artifact_registry_repository.images.repository_id}"


def substitutions_from_terraform() -> dict[str, str]:
    value = terraform().outputs["cloud_build_substitutions"]["value"]
    items = re.findall(r'"(_[A-Z_]+)=(.*?)"', value)
    assert items, f"cannot read the substitutions output: {value!r}"
    return dict(items)


def test_every_substitution_is_declared_and_given():
    text = (REPO / "cloudbuild.yaml").read_text()
    used = set(re.findall(r"\$\{(_[A-Z_]+)\}", text))
    declared = set(cloudbuild()["substitutions"])
    assert used <= declared, f"cloudbuild.yaml uses undeclared substitutions {sorted(used - declared)}"
    given = set(substitutions_from_terraform())
    assert given <= declared, f"Terraform outputs substitutions cloudbuild.yaml does not declare: {given - declared}"
    without_default = {name for name, value in cloudbuild()["substitutions"].items() if value in ("", None)}
    assert without_default <= given, f"nothing provides {sorted(without_default - given)}"


# --- IAM --------------------------------------------------------------------------


def all_role_grants():
    for (kind, name), body in terraform().resources.items():
        if kind.endswith(("_iam_member", "_iam_binding", "_iam_policy")):
            yield kind, name, body.get("role")


def test_no_primitive_roles():
    for kind, name, role in all_role_grants():
        assert role not in PRIMITIVE_ROLES, f"{kind}.{name} grants the primitive role {role}"
    for text in terraform().texts.values():
        for role in PRIMITIVE_ROLES:
            assert f'"{role}"' not in text, f"{role} appears in Terraform"


def test_project_wide_roles_only_where_nothing_narrower_exists():
    for kind, name, role in all_role_grants():
        if kind.startswith("google_project_iam"):
            assert role in PROJECT_ROLES_WITHOUT_RESOURCE_BINDING, (
                f"{kind}.{name} grants {role} on the whole project; bind it on the resource instead"
            )


def test_one_service_account_per_function():
    for function in FUNCTIONS:
        account = block(service(function), "template")["service_account"]
        assert account == f"${{google_service_account.{function.replace('-', '_')}.email}}", (
            f"{function} runs as {account}"
        )


# --- the page ------------------------------------------------------------------------


def test_cloud_build_publishes_the_folder_the_page_is_built_into():
    config = (REPO / "frontend" / "svelte.config.js").read_text()
    match = re.search(r"pages:\s*'([^']+)'", config)
    assert match, "frontend/svelte.config.js names no adapter-static pages folder"
    built = f"frontend/{match.group(1)}"
    steps = cloudbuild_steps()
    publish = " ".join(step_command(steps["publish-page"]))
    assert f"gcloud storage rsync {built} " in publish, f"publish-page does not upload {built}"
    config_step = " ".join(step_command(steps["write-page-config"]))
    assert f'"{built}/config.json"' in config_step, f"config.json is not written into {built}"
    package = (REPO / "frontend" / "package.json").read_text()
    assert '"build":' in package, "frontend/package.json has no build script for `npm run build`"


def test_page_config_has_the_contract_keys():
    keys = set(re.findall(r'"(\w+)":', contract_text_section("## The page's `config.json`")))
    script = " ".join(step_command(cloudbuild_steps()["write-page-config"]))
    written = set(re.findall(r"(\w+):\s*(?:process|Number)", script))
    assert keys and written == keys, f"config.json keys: contract {sorted(keys)}, Cloud Build writes {sorted(written)}"


def contract_text_section(heading: str) -> str:
    text = (REPO / "docs" / "CONTRACTS.md").read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


# --- suppressions ---------------------------------------------------------------------


def test_every_checkov_suppression_says_why():
    files = sorted((REPO / "terraform").glob("*.tf")) + [REPO / "Dockerfile"]
    found = 0
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip=" not in line:
                continue
            found += 1
            match = re.search(r"checkov:skip=([A-Z0-9_]+):(.*)", line)
            reason = match.group(2).strip() if match else ""
            assert len(reason) >= 20, f"{path.name}:{number}: suppression without a reason: {line.strip()}"
    assert found, "no suppressions found: has the comment syntax changed?"


def test_migration_job_sets_only_what_catdog_reads():
    source, read_by = settings_read_by()
    if "catdog" not in read_by:
        pytest.skip(f"{source} does not list the catdog CLI's settings")
    job = next(iter(terraform().of_type("google_cloud_run_v2_job").values()))
    container = block(block(block(job, "template"), "template"), "containers")
    names = {entry["name"] for entry in container.get("env", [])}
    assert "DATABASE_URL" in names, "the migration job has no database to migrate"
    unknown = sorted(names - read_by["catdog"])
    assert not unknown, f"the migration job sets {unknown}, which catdog does not read (per {source})"
