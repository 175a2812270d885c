"""The checks catch what they are for: each test breaks a copy of the deployment
files the way a regression would and expects the check to fail on the copy
(and first, that the same check passes on an unbroken copy).

The copy holds what the checks read: terraform/, cloudbuild.yaml, the
Dockerfile, docs/ and the frontend's config; sources.py reads it when
CATDOG_DEPLOY_REPO points there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCHEMA_CHECK = REPO / "deploy" / "schema" / "check_schema.py"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(REPO / "terraform", root / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    shutil.copytree(REPO / "docs", root / "docs")
    (root / "frontend").mkdir()
    for name in ("svelte.config.js", "package.json"):
        shutil.copy(REPO / "frontend" / name, root / "frontend" / name)
    for name in ("cloudbuild.yaml", "Dockerfile"):
        shutil.copy(REPO / name, root / name)
    return root


def edit(path: Path, old: str, new: str, count: int = 1):
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}: update this mutation test"
    path.write_text(text.replace(old, new, count))


def edit_re(path: Path, pattern: str, new: str):
    text = path.read_text()
    changed, n = re.subn(pattern, new, text, count=1, flags=re.MULTILINE)
    assert n == 1, f"{path.name} has no match for {pattern!r}: update this mutation test"
    path.write_text(changed)


def run_check(root: Path, test: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CATDOG_DEPLOY_REPO=str(root))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{HERE / 'test_deployment.py'}::{test}"],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_catches(root: Path, test: str, message: str):
    result = run_check(root, test)
    assert result.returncode != 0, f"{test} passed on the broken copy:\n{result.stdout}"
    assert message in result.stdout, f"{test} failed, but not saying {message!r}:\n{result.stdout[-3000:]}"


@pytest.mark.parametrize(
    "test",
    [
        "test_every_storage_command_has_the_permissions_it_needs",
        "test_every_resource_waits_for_its_api",
        "test_dockerfile_bases_are_pinned_by_digest",
        "test_cloud_build_images_are_pinned_by_digest",
        "test_substitutions_used_only_inside_others_are_allowed",
        "test_terraform_ignores_what_gcloud_run_deploy_changes",
    ],
)
def test_unbroken_copy_passes(copy, test):
    result = run_check(copy, test)
    assert result.returncode == 0, result.stdout[-3000:]


def test_catches_the_website_bucket_permission_gap(copy):
    # The original gap: the deployer holds only objectAdmin on the website bucket.
    edit(
        copy / "terraform" / "service_accounts.tf",
        'toset(["roles/storage.objectAdmin", "roles/storage.legacyBucketReader"])',
        'toset(["roles/storage.objectAdmin"])',
    )
    assert_catches(copy, "test_every_storage_command_has_the_permissions_it_needs", "storage.buckets.get")


def test_catches_a_service_account_created_before_the_iam_api(copy):
    edit_re(
        copy / "terraform" / "service_accounts.tf",
        r'(resource "google_service_account" "list_images" \{[^}]*?)\n  # The IAM API[^\n]*\n  depends_on = \[google_project_service\.enabled\]\n',
        r"\1",
    )
    assert_catches(copy, "test_every_resource_waits_for_its_api", "google_service_account.list_images does not depend")


def test_catches_an_api_missing_from_the_list(copy):
    edit(copy / "terraform" / "apis.tf", '    "pubsub.googleapis.com",\n', "")
    assert_catches(copy, "test_every_resource_waits_for_its_api", "needs pubsub.googleapis.com")


def test_catches_an_unpinned_dockerfile_base(copy):
    edit_re(copy / "Dockerfile", r"^FROM (python:[\w.-]+)@sha256:[0-9a-f]{64}", r"FROM \1")
    assert_catches(copy, "test_dockerfile_bases_are_pinned_by_digest", "python:3.11-slim-bookworm")


def test_catches_an_unpinned_dockerfile_frontend(copy):
    dockerfile = copy / "Dockerfile"
    dockerfile.write_text("# syntax=docker/dockerfile:1\n" + dockerfile.read_text())
    assert_catches(copy, "test_dockerfile_bases_are_pinned_by_digest", "syntax=docker/dockerfile:1")


def test_catches_an_unpinned_cloud_build_image(copy):
    edit_re(copy / "cloudbuild.yaml", r"name: (node:\d+-bookworm)@sha256:[0-9a-f]{64}", r"name: \1")
    assert_catches(copy, "test_cloud_build_images_are_pinned_by_digest", "node:")


def test_catches_node_past_end_of_life(copy):
    edit_re(copy / "cloudbuild.yaml", r"name: node:\d+-bookworm@", "name: node:20-bookworm@")
    assert_catches(copy, "test_node_is_a_supported_lts", "end of life")


def test_catches_nested_substitutions_without_allow_loose(copy):
    edit(copy / "cloudbuild.yaml", "  substitutionOption: ALLOW_LOOSE\n", "")
    assert_catches(copy, "test_substitutions_used_only_inside_others_are_allowed", "ALLOW_LOOSE")


def test_catches_revision_drift(copy):
    edit(copy / "terraform" / "run.tf", "      template[0].revision,\n", "")
    assert_catches(copy, "test_terraform_ignores_what_gcloud_run_deploy_changes", "template[0].revision")


def test_catches_a_budget_that_does_not_fit(copy):
    edit_re(
        copy / "terraform" / "variables.tf",
        r'(variable "list_max_instances" \{[^}]*default     = )\d+',
        r"\g<1>4",
    )
    assert_catches(copy, "test_connection_budget_fits_with_a_rollout_and_the_migration", "connections >")


def test_schema_check_catches_unknown_and_missing_arguments(copy):
    if not (REPO / "deploy" / "schema" / "node_modules").exists():
        pytest.skip("the provider schema is not installed (deploy/check.sh runs npm ci in deploy/schema)")
    tf = copy / "terraform"
    ok = subprocess.run([sys.executable, str(SCHEMA_CHECK), str(tf)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    edit(tf / "pubsub.tf", "  ack_deadline_seconds       = 60", "  ack_deadline_secs = 60")
    edit(tf / "pubsub.tf", "  topic = google_pubsub_topic.images_dead_letter.id\n", "")
    broken = subprocess.run([sys.executable, str(SCHEMA_CHECK), str(tf)], capture_output=True, text=True, timeout=120)
    assert broken.returncode != 0
    assert 'unknown argument or block "ack_deadline_secs"' in broken.stderr
    assert 'google_pubsub_subscription.images_dead_letter: required "topic" is not set' in broken.stderr


def test_pin_images_refreshes_every_pinned_image(copy, tmp_path):
    """deploy/pin-images.sh (the documented update command) rewrites every pin, with a stand-in for the registry."""
    (copy / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "pin-images.sh", copy / "deploy" / "pin-images.sh")
    fake = "sha256:" + "ab" * 32
    resolver = tmp_path / "resolver"
    resolver.write_text(f"#!/bin/sh\necho {fake}\n")
    resolver.chmod(0o755)
    env = dict(os.environ, PIN_IMAGES_RESOLVER=str(resolver))
    script = [str(copy / "deploy" / "pin-images.sh")]
    stale = subprocess.run(script + ["--check"], env=env, capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1, stale.stderr
    done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("Dockerfile", "cloudbuild.yaml"):
        digests = set(re.findall(r"@(sha256:[0-9a-f]{64})", (copy / name).read_text()))
        assert digests == {fake}, f"{name} still has {digests - {fake}}"
    assert run_check(copy, "test_cloud_build_images_are_pinned_by_digest").returncode == 0
    current = subprocess.run(script + ["--check"], env=env, capture_output=True, text=True, timeout=60)
    assert current.returncode == 0, current.stdout
