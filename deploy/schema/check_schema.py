"""Validates terraform/*.tf against the google provider's own schema, offline.

`terraform validate` needs the provider plugin, which only the Terraform
registry serves. The npm package @cdktf/provider-google is generated from that
same provider's schema and ships it, in its `.jsii` file, as typed classes: one
per resource and data source, with a `...Config` interface whose properties are
the resource's arguments and nested blocks (optional or required), each
documented with a link to the registry page whose anchor is the argument's
Terraform name. deploy/schema/package.json pins the package version built from
the provider version terraform/versions.tf requires.

Checks, for every resource and data block:
  - the type exists in the provider (google_* and random_* are the only
    providers here; random_* is checked against a short built-in list);
  - every argument and nested block (dynamic ones too) exists at that place,
    attributes are written as attributes and blocks as blocks;
  - every required argument and block is set;
and that the package's provider version equals the one versions.tf pins.

    python deploy/schema/check_schema.py [TERRAFORM_DIR]

Exits 1 and lists every problem when one is found.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PACKAGE = HERE / "node_modules" / "@cdktf" / "provider-google"

# Terraform's meta-arguments, valid on every resource and data source.
META = {"count", "for_each", "depends_on", "provider", "lifecycle", "connection", "provisioner"}
# cdktf's names for the meta-arguments in each Config interface.
CDKTF_META = {"connection", "count", "dependsOn", "forEach", "lifecycle", "provider", "provisioners"}

# hashicorp/random is not in the package; its few resources' arguments, from its
# documentation (3.7.2): name -> (required, optional).
RANDOM = {
    "random_id": ({"byte_length"}, {"keepers", "prefix"}),
    "random_password": (
        {"length"},
        {"keepers", "lower", "min_lower", "min_numeric", "min_special", "min_upper", "number", "numeric",
         "override_special", "special", "upper"},
    ),
}


@dataclass
class Prop:
    name: str
    optional: bool
    block: str | None  # fqn of the nested block's struct, None for an attribute


@dataclass
class Schema:
    types: dict
    resources: dict[str, str] = field(default_factory=dict)  # google_x -> Config fqn
    data_sources: dict[str, str] = field(default_factory=dict)
    provider_version: str = ""

    def props(self, fqn: str) -> dict[str, Prop]:
        out: dict[str, Prop] = {}
        todo = [fqn]
        while todo:
            t = self.types[todo.pop()]
            todo.extend(i for i in t.get("interfaces", []) if i in self.types)
            for p in t.get("properties", []):
                if fqn.endswith("Config") and p["name"] in CDKTF_META:
                    continue
                name = terraform_name(p)
                out[name] = Prop(name, bool(p.get("optional")), struct_of(p["type"], self.types))
        return out


def terraform_name(prop: dict) -> str:
    summary = prop.get("docs", {}).get("summary", "")
    match = re.search(r"#(\w+) \w+#\w+\}", summary)
    if match:
        return match.group(1)
    return re.sub(r"(?<!^)([A-Z])", r"_\1", prop["name"]).lower()


def struct_of(type_ref: dict, types: dict) -> str | None:
    """The struct fqn if this property is a nested block (one, or a list of them)."""
    if "fqn" in type_ref:
        target = types.get(type_ref["fqn"])
        return type_ref["fqn"] if target and target.get("datatype") else None
    if "union" in type_ref:
        for option in type_ref["union"]["types"]:
            found = struct_of(option, types)
            if found:
                return found
    if "collection" in type_ref and type_ref["collection"]["kind"] == "array":
        return struct_of(type_ref["collection"]["elementtype"], types)
    return None


def load_schema() -> Schema:
    jsii = PACKAGE / ".jsii"
    if not jsii.exists():
        sys.exit(f"{jsii} is missing: run `npm ci` in {HERE.relative_to(REPO)} (deploy/check.sh does)")
    data = json.loads(jsii.read_text())
    schema = Schema(types=data["types"])
    package = json.loads((PACKAGE / "package.json").read_text())
    schema.provider_version = package["cdktf"]["provider"]["version"]
    for fqn, t in data["types"].items():
        base = t.get("base")
        if base not in ("cdktf.TerraformResource", "cdktf.TerraformDataSource"):
            continue
        summary = t.get("docs", {}).get("summary", "")
        match = re.search(r"/docs/(resources|data-sources)/(\w+)", summary)
        if not match or f"{fqn}Config" not in data["types"]:
            continue
        kind, name = match.groups()
        target = schema.resources if kind == "resources" else schema.data_sources
        target[f"google_{name}"] = f"{fqn}Config"
    return schema


def unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def is_block(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__") for v in value)


def check_body(schema: Schema, body: dict, fqn: str, where: str, problems: list[str], top: bool):
    props = schema.props(fqn)
    present = set()
    for raw_key, value in body.items():
        key = unquote(raw_key)
        if key.startswith("__"):
            continue
        if top and key in META:
            continue
        if key == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    label = unquote(label)
                    if label.startswith("__"):
                        continue
                    prop = props.get(label)
                    if prop is None or prop.block is None:
                        problems.append(f"{where}: dynamic \"{label}\" is not a block here")
                        continue
                    present.add(label)
                    for content in spec.get("content", []):
                        check_body(schema, content, prop.block, f"{where}.{label}", problems, False)
            continue
        prop = props.get(key)
        if prop is None:
            known = ", ".join(sorted(props))
            problems.append(f"{where}: unknown argument or block \"{key}\" (known here: {known})")
            continue
        present.add(key)
        if prop.block is None:
            if is_block(value):
                problems.append(f"{where}: \"{key}\" is an attribute (write {key} = ...), not a block")
            continue
        if not is_block(value):
            # HCL allows `block = [{...}]` for some list blocks only when the provider says so; we do not.
            problems.append(f"{where}: \"{key}\" is a block (write {key} {{ ... }}), not an attribute")
            continue
        for item in value:
            check_body(schema, item, prop.block, f"{where}.{key}", problems, False)
    for name, prop in props.items():
        if not prop.optional and name not in present and name != "id":
            problems.append(f"{where}: required \"{name}\" is not set")


def pinned_google_version(tf_dir: Path) -> str | None:
    for path in sorted(tf_dir.glob("*.tf")):
        for block in hcl2.loads(path.read_text()).get("terraform", []):
            for providers in block.get("required_providers", []):
                google = providers.get("google")
                if google:
                    return unquote(google["version"]).lstrip("= ").strip()
    return None


def main(argv: list[str]) -> int:
    tf_dir = Path(argv[1]) if len(argv) > 1 else REPO / "terraform"
    schema = load_schema()
    problems: list[str] = []

    pinned = pinned_google_version(tf_dir)
    if pinned != schema.provider_version:
        problems.append(
            f"versions.tf pins hashicorp/google {pinned!r}, the schema package describes {schema.provider_version}: "
            "pin @cdktf/provider-google to the release built from the pinned provider (npm view "
            "@cdktf/provider-google@VERSION cdktf.provider.version) in deploy/schema/package.json"
        )

    checked = 0
    for path in sorted(tf_dir.glob("*.tf")):
        parsed = hcl2.loads(path.read_text())
        for section, table in (("resource", schema.resources), ("data", schema.data_sources)):
            for entry in parsed.get(section, []):
                for raw_kind, named in entry.items():
                    kind = unquote(raw_kind)
                    if kind.startswith("__"):
                        continue
                    for raw_name, body in named.items():
                        name = unquote(raw_name)
                        if name.startswith("__"):
                            continue
                        where = f"{path.name}: {section} {kind}.{name}"
                        checked += 1
                        if kind.startswith("random_") and section == "resource":
                            required, optional = RANDOM.get(kind, (None, None))
                            if required is None:
                                problems.append(f"{where}: unknown random resource type")
                                continue
                            keys = {unquote(k) for k in body if not unquote(k).startswith("__")} - META
                            problems += [f"{where}: unknown argument \"{k}\"" for k in sorted(keys - required - optional)]
                            problems += [f"{where}: required \"{k}\" is not set" for k in sorted(required - keys)]
                            continue
                        fqn = table.get(kind)
                        if fqn is None:
                            problems.append(f"{where}: hashicorp/google {schema.provider_version} has no {section} type {kind}")
                            continue
                        check_body(schema, body, fqn, where, problems, True)

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) against hashicorp/google {schema.provider_version}", file=sys.stderr)
        return 1
    print(f"{checked} resources and data sources match hashicorp/google {schema.provider_version}'s schema")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
