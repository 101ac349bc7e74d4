"""deploy/k8s/values.yaml as the Dagster Helm chart and dagster-k8s would use it.

- The run launcher's config, rendered the way the chart's ``dagsterYaml.runLauncher.k8s``
  template does, passes dagster-k8s's own config schema, builds a ``K8sRunLauncher``, and the
  Job that launcher would create for a run of our code location has the launcher's sizing, our
  image, and the location's environment (rendered like the user-deployments chart's
  ``dagsterUserDeployments.k8sContainerContext``). test_deploy.py checks the instance sections.
- Against the chart's own ``values.schema.json`` when a copy of the chart is at hand (no
  network here): ``helm pull dagster/dagster --version <dagster version> --untar
  --untardir build/helm`` puts it at :data:`CHART` (or point ``$QUANT_ASSETS_HELM_CHART`` at
  the unpacked chart). Without it that test skips and says which file it wanted.
"""

from __future__ import annotations

import copy
import json
import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from dagster import DagsterRun
from dagster._config import process_config
from dagster._core.code_pointer import ModuleCodePointer
from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
from dagster_k8s import K8sRunLauncher
from dagster_k8s.job import construct_dagster_k8s_job

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "deploy" / "k8s" / "values.yaml"
CHART = Path(os.environ.get("QUANT_ASSETS_HELM_CHART") or REPO / "build" / "helm" / "dagster")
# Where the chart's Kubernetes `$ref`s (kubernetesjsonschema.dev/<version>/_definitions.json)
# are looked for: the same layout as that site, beside the chart.
K8S_SCHEMAS = CHART.parent / "kubernetes-json-schema"

RELEASE, NAMESPACE = "quant-assets", "dagster"
FULLNAME = f"{RELEASE}-dagster"  # the chart's dagster.fullname: release name + chart name
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome

# camelCase value -> K8sRunLauncher config key, as the chart's run-launcher template renders
# them (the keys it copies as they are). Anything else under k8sRunLauncher is an error here:
# the chart would drop it without a word.
_LAUNCHER = {
    "loadInclusterConfig": "load_incluster_config", "kubeconfigFile": "kubeconfig_file",
    "jobNamespace": "job_namespace", "imagePullPolicy": "image_pull_policy", "envVars": "env_vars",
    "volumeMounts": "volume_mounts", "volumes": "volumes", "labels": "labels", "resources": "resources",
    "failPodOnRunFailure": "fail_pod_on_run_failure", "schedulerName": "scheduler_name",
    "securityContext": "security_context",
}
_RUN_K8S_CONFIG = {
    "containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def _values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def _unknown(section: dict[str, Any], known: Any, where: str) -> None:
    extra = set(section) - set(known)
    if extra:
        raise ValueError(f"{where}: {sorted(extra)} not rendered by the chart (as mirrored here)")


def _run_launcher_config(values: dict[str, Any]) -> dict[str, Any]:
    """The K8sRunLauncher config the chart renders into the instance's dagster.yaml."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    _unknown(launcher, [*_LAUNCHER, "envConfigMaps", "envSecrets", "image", "runK8sConfig"], "k8sRunLauncher")
    config = {
        "job_namespace": NAMESPACE,  # `jobNamespace | default .Release.Namespace`
        "service_account_name": FULLNAME,
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": "dagster-postgresql-secret",
        **{_LAUNCHER[key]: value for key, value in launcher.items() if key in _LAUNCHER and value is not None},
    }
    for key, name in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if launcher.get(key):
            config[name] = [ref["name"] for ref in launcher[key] if "name" in ref]
    if launcher.get("runK8sConfig"):
        _unknown(launcher["runK8sConfig"], _RUN_K8S_CONFIG, "runK8sConfig")
        config["run_k8s_config"] = {_RUN_K8S_CONFIG[k]: v for k, v in launcher["runK8sConfig"].items() if v}
    return config


def _location_container_context(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the user-deployments chart hands every run of ``deployment`` (its
    includeConfigInLaunchedRuns): the location's k8s container context."""
    k8s: dict[str, Any] = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{FULLNAME}-{deployment['name']}-user-env",
                            *(ref["name"] for ref in deployment.get("envConfigMaps", []) if "name" in ref)],
        "namespace": NAMESPACE,
        "service_account_name": f"{FULLNAME}-user-deployments",
        "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = [ref["name"] for ref in deployment["envSecrets"] if "name" in ref]
    for key, name in (("volumeMounts", "volume_mounts"), ("volumes", "volumes"), ("labels", "labels"),
                      ("resources", "resources"), ("schedulerName", "scheduler_name")):
        if deployment.get(key):
            k8s[name] = deployment[key]
    if isinstance(deployment.get("env"), list):
        k8s["env"] = deployment["env"]
    return {"k8s": k8s}


def _image(deployment: dict[str, Any]) -> str:
    return f"{deployment['image']['repository']}:{deployment['image']['tag']}"


@pytest.fixture
def kubeconfig(tmp_path):
    """A kubeconfig naming a cluster on 127.0.0.1 that is never contacted (building a launcher
    and a Job spec makes no API call); the kubernetes client's default config is restored."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "test", "user": {"token": "unused"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    before = kubernetes.client.Configuration.get_default_copy()
    yield str(path)
    kubernetes.client.Configuration.set_default(before)


def _launcher(config: dict[str, Any], kubeconfig: str) -> K8sRunLauncher:
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, [error.message for error in processed.errors]
    # In the cluster the launcher reads its service account; here, the kubeconfig above.
    return K8sRunLauncher.from_config_value(
        None, {**processed.value, "load_incluster_config": False, "kubeconfig_file": kubeconfig})


def _run_pod(values: dict[str, Any], kubeconfig: str) -> kubernetes.client.V1Job:
    """The Job the K8sRunLauncher built from ``values`` creates for a run of our location."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = _launcher(_run_launcher_config(values), kubeconfig)
    origin = RepositoryPythonOrigin(
        executable_path="/usr/local/bin/python",
        code_pointer=ModuleCodePointer("quant_assets.definitions", "defs"),
        container_image=_image(deployment),  # DAGSTER_CURRENT_IMAGE, set by the chart
        container_context=_location_container_context(deployment),
    )
    run = DagsterRun(job_name="daily_workflow", run_id="0f0e0d0c-0000-4000-8000-000000000001",
                     job_code_origin=JobPythonOrigin("daily_workflow", origin))
    context = launcher.get_container_context_for_run(run)
    return construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=origin.container_image, run_launcher=launcher),
        args=["dagster", "api", "execute_run"], job_name="dagster-run-0f0e0d0c", component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
    )


def test_run_launcher_config_passes_dagster_k8s_schema():
    config = _run_launcher_config(_values())
    processed = process_config(K8sRunLauncher.config_type(), config)
    assert processed.success, [error.message for error in processed.errors]
    assert processed.value["run_k8s_config"]["container_config"]["resources"]["requests"] == {
        "cpu": "2", "memory": "4Gi"}
    assert version("dagster-k8s") == f"0.{int(version('dagster').split('.')[1]) + 16}.{version('dagster').split('.')[2]}"


@pytest.mark.parametrize("where, edit", [
    ("k8sRunLauncher", lambda launcher: launcher.update(runK8sConfg=launcher.pop("runK8sConfig"))),
    ("runK8sConfig", lambda launcher: launcher["runK8sConfig"].update(containerConf={})),
])
def test_run_launcher_check_fails_on_a_value_the_chart_would_drop(where, edit):
    values = _values()
    edit(values["runLauncher"]["config"]["k8sRunLauncher"])
    with pytest.raises(ValueError, match=where):
        _run_launcher_config(values)


def test_run_launcher_schema_rejects_a_wrong_type():
    config = _run_launcher_config(_values())
    config["load_incluster_config"] = "yes"
    assert not process_config(K8sRunLauncher.config_type(), config).success


def test_run_pod_has_the_launcher_sizing_our_image_and_the_location_env(kubeconfig):
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    job = _run_pod(values, kubeconfig)
    pod = job.spec.template.spec
    (container,) = pod.containers
    sizing = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    assert container.resources.requests == sizing["requests"] and container.resources.limits == sizing["limits"]
    assert container.image == _image(deployment) == "registry.example.com/quant-assets:0.1.0"
    assert container.image_pull_policy == deployment["image"]["pullPolicy"]
    env = {e.name: e for e in container.env}
    assert env["QUANT_ASSETS_LAKEHOUSE"].value == "s3://quant-assets-lake/lakehouse"
    assert env["DAGSTER_HOME"].value == DAGSTER_HOME
    assert env["DAGSTER_PG_PASSWORD"].value_from.secret_key_ref.name == "dagster-postgresql-secret"
    secrets = {source.secret_ref.name for source in container.env_from if source.secret_ref}
    assert secrets == {"quant-assets-object-storage", "quant-assets-tradingview"}
    assert pod.service_account_name == f"{FULLNAME}-user-deployments"


def test_location_resources_would_replace_the_run_pod_sizing(kubeconfig):
    """Why the code location sets no `resources`: dagster-k8s merges the location's container
    context over the launcher's, so they would size every run pod instead."""
    values = _values()
    values["dagster-user-deployments"]["deployments"][0]["resources"] = {"requests": {"cpu": "250m", "memory": "512Mi"}}
    (container,) = _run_pod(values, kubeconfig).spec.template.spec.containers
    assert container.resources.requests == {"cpu": "250m", "memory": "512Mi"}


# --- the chart's own values schema ---------------------------------------------------------


class _AnySchema(dict):
    """A stand-in for the Kubernetes definitions document: every pointer into it resolves to
    an empty (permissive) schema."""

    def __missing__(self, key: str) -> _AnySchema:
        return _AnySchema()


def chart_schema_errors(chart: Path, values: dict[str, Any], k8s_schemas: Path) -> list[str]:
    """Validate ``values`` as Helm does against ``chart``'s values.schema.json, and each
    subchart's values against its own schema; the errors, as `path: message`.

    The chart's Kubernetes `$ref`s point at kubernetesjsonschema.dev; they are read from
    ``k8s_schemas/<version>/_definitions.json`` when present and accepted as anything
    otherwise (the chart's own keys are still checked)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    def retrieve(uri: str) -> Resource:
        prefix = "https://kubernetesjsonschema.dev/"
        if not uri.startswith(prefix):
            raise LookupError(f"no local copy of {uri}")
        local = k8s_schemas / uri.removeprefix(prefix)
        contents = json.loads(local.read_text()) if local.is_file() else _AnySchema()
        return Resource.from_contents(contents, default_specification=DRAFT7)

    registry = Registry(retrieve=retrieve)
    errors = []
    targets = [(chart / "values.schema.json", values, "")]
    for sub in sorted((chart / "charts").glob("*/values.schema.json")):
        targets.append((sub, values.get(sub.parent.name, {}), f"{sub.parent.name}."))
    for path, instance, prefix in targets:
        schema = json.loads(path.read_text())
        validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        for error in validator(schema, registry=registry).iter_errors(instance):
            errors.append(f"{prefix}{'.'.join(map(str, error.absolute_path))}: {error.message}")
    return errors


def test_chart_schema_check_catches_a_misspelt_key_and_resolves_kubernetes_refs(tmp_path):
    """The validation above, on a small chart of our own: the same machinery the real chart's
    test uses, shown able to fail."""
    chart = tmp_path / "dagster"
    (chart / "charts" / "sub").mkdir(parents=True)
    ref = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json#/definitions/io.k8s.api.core.v1.ResourceRequirements"
    (chart / "values.schema.json").write_text(json.dumps({"type": "object", "properties": {
        "pools": {"type": "object", "properties": {"defaultLimit": {"type": "integer"}}, "additionalProperties": False},
        "resources": {"$ref": ref},
    }}))
    (chart / "charts" / "sub" / "values.schema.json").write_text(json.dumps({"required": ["enabled"]}))
    good = {"pools": {"defaultLimit": 1}, "resources": {"requests": {"cpu": "2"}}, "sub": {"enabled": True}}
    assert chart_schema_errors(chart, good, tmp_path / "none") == []
    bad = copy.deepcopy(good)
    bad["pools"]["defaultLimits"] = bad["pools"].pop("defaultLimit")
    del bad["sub"]["enabled"]
    errors = chart_schema_errors(chart, bad, tmp_path / "none")
    assert any(e.startswith("pools: ") and "defaultLimits" in e for e in errors)
    assert any(e.startswith("sub.") and "enabled" in e for e in errors)
    # With the Kubernetes definitions present, their shapes are checked too.
    definitions = tmp_path / "k8s" / "v1.18.0" / "_definitions.json"
    definitions.parent.mkdir(parents=True)
    definitions.write_text(json.dumps({"definitions": {"io.k8s.api.core.v1.ResourceRequirements": {
        "type": "object", "properties": {"requests": {"type": "object"}}, "additionalProperties": False}}}))
    bad = copy.deepcopy(good)
    bad["resources"] = {"request": {"cpu": "2"}}
    assert any(e.startswith("resources: ") for e in chart_schema_errors(chart, bad, tmp_path / "k8s"))


def test_values_pass_the_chart_values_schema():
    schema = CHART / "values.schema.json"
    if not schema.is_file():
        pytest.skip(f"no copy of the Dagster chart's values schema at {schema} (helm pull dagster/dagster "
                    f"--version {version('dagster')} --untar --untardir {CHART.parent}, or set QUANT_ASSETS_HELM_CHART)")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["name"] == "dagster" and str(chart["version"]) == version("dagster"), chart.get("version")
    values = _values()
    assert chart_schema_errors(CHART, values, K8S_SCHEMAS) == []
    values["concurrency"]["pools"]["defaultLimits"] = values["concurrency"]["pools"].pop("defaultLimit")
    assert any("defaultLimits" in error for error in chart_schema_errors(CHART, values, K8S_SCHEMAS))
