"""Kubernetes manifests and Helm values, checked offline (no cluster runs here).

Manifests validate against the Kubernetes schemas. The Helm chart itself is not available
offline, so its values are checked where they can go wrong: every Kubernetes-typed part
(volumes, mounts, env sources, resources, security contexts) is placed in a Pod and validated
against the same schemas, and the settings they carry must make a working production profile.
"""

import importlib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
HELM_VALUES = ROOT / "deploy" / "helm" / "dagster-values.yaml"
# The keys of `kubectl create secret` in docs/how-to/scale-out.md.
SECRET_KEYS = ("MLOPS_POSTGRES_PASSWORD", "MLOPS_REDIS_PASSWORD")
KUBERNETES_VERSION = "1.31.0"


def _documents():
    for path in MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield pytest.param(document, id=f"{path.name}:{document['kind']}")


@pytest.mark.parametrize("document", list(_documents()))
def test_manifest_is_valid(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_serving_deployment_is_hardened_and_probed():
    documents = list(
        yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "serving.yaml").read_text())
    )
    kinds = {d["kind"] for d in documents}
    assert kinds == {"Service", "Deployment", "HorizontalPodAutoscaler"}
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The service verifies models with the public key of the signing secret, and no more.
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["MLOPS_VERIFY_KEY_FILE"] == f"{mounts['model-verify-key']}/signing_key.pub"
    [key] = [v for v in pod["volumes"] if v["name"] == "model-verify-key"]
    assert key["secret"]["items"] == [{"key": "signing_key.pub", "path": "signing_key.pub"}]


def _platform(kind: str) -> dict:
    documents = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "platform.yaml").read_text())
    return next(d for d in documents if d["kind"] == kind)


def _values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


def _pod(name: str, part: dict, env_from: list[dict]) -> dict:
    """A Pod carrying one Helm values block's Kubernetes-typed fields, for the schemas."""
    container = {
        "name": name,
        "image": "registry.example.com/mlops-code-location:0.1.0",
        "envFrom": env_from,
        "volumeMounts": part["volumeMounts"],
        "resources": part["resources"],
    }
    if "securityContext" in part:
        container["securityContext"] = part["securityContext"]
    spec = {"containers": [container], "volumes": part["volumes"]}
    run_pod = part.get("runK8sConfig", {}).get("podSpecConfig", {})
    spec["securityContext"] = part.get("podSecurityContext") or run_pod["securityContext"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _env_from(part: dict) -> list[dict]:
    return [{"configMapRef": m} for m in part["envConfigMaps"]] + [
        {"secretRef": s} for s in part["envSecrets"]
    ]


def test_helm_values_validate_as_kubernetes_objects():
    values = _values()
    [deployment] = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    for name, part in (("user-code", deployment), ("run", launcher)):
        kubernetes_validate.validate(
            _pod(name, part, _env_from(part)), KUBERNETES_VERSION, strict=True
        )


def test_helm_values_and_platform_config_make_a_production_profile():
    from mlops_assets.profile import active_profile

    values = _values()
    config = _platform("ConfigMap")
    environment = {**config["data"], **dict.fromkeys(SECRET_KEYS, "from-the-secret")}
    profile = active_profile(environment)
    pg = profile.require_postgres()
    chart_pg = values["postgresql"]
    assert values["postgresql"]["enabled"] is False  # our server, not a bundled one
    assert (chart_pg["postgresqlHost"], chart_pg["postgresqlUsername"]) == (pg.host, pg.user)
    assert chart_pg["postgresqlDatabase"] == pg.dagster_db
    assert chart_pg["postgresqlScheme"] == "postgresql+psycopg2"  # the driver the image ships
    assert values["generatePostgresqlPasswordSecret"] is False

    [deployment] = values["dagster-user-deployments"]["deployments"]
    module = deployment["dagsterApiGrpcArgs"][
        deployment["dagsterApiGrpcArgs"].index("--module-name") + 1
    ]
    assert hasattr(importlib.import_module(module), "defs")
    claim = _platform("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    for part in (deployment, launcher):
        assert _pod("any", part, [])["spec"]["securityContext"]["runAsNonRoot"] is True
        assert part["envConfigMaps"] == [{"name": config["metadata"]["name"]}]
        assert part["envSecrets"] == [{"name": "mlops-secrets"}]
        volumes = {v["name"]: v for v in part["volumes"]}
        state = volumes["mlops-state"]["persistentVolumeClaim"]["claimName"]
        assert state == claim["metadata"]["name"]
        mounts = {m["name"]: m["mountPath"] for m in part["volumeMounts"]}
        assert mounts["mlops-state"] == config["data"]["MLOPS_HOME"]
    # Runs sign models with the private key of a secret mounted where the setting points.
    signing = dict(e.split("=", 1) for e in launcher["envVars"])["MLOPS_SIGNING_KEY_FILE"]
    volumes = {v["name"]: v for v in launcher["volumes"]}
    assert volumes["model-signing"]["secret"]["secretName"] == "mlops-model-signing"
    mounts = {m["name"]: m["mountPath"] for m in launcher["volumeMounts"]}
    assert signing == f"{mounts['model-signing']}/signing_key.pem"


def test_no_secret_is_kept_in_the_deployment_files():
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert not document or document.get("kind") != "Secret", path
        text = path.read_text().lower()
        assert "password:" not in text.replace("postgresqlpassword", ""), path


def test_federated_site_job_mounts_only_its_own_site_data():
    documents = list(
        yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "federated.yaml").read_text())
    )
    [job] = [d for d in documents if d["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    command = container["command"]
    site = command[command.index("--site") + 1]
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    data = [c for c in claims if c["claimName"].startswith("mlops-site-")]
    assert data == [{"claimName": f"mlops-site-{site}-data", "readOnly": True}]
    assert "--tls-dir" in command
    [server] = [d for d in documents if d["kind"] == "Deployment"]
    assert "--tls-dir" in server["spec"]["template"]["spec"]["containers"][0]["command"]


def test_dask_training_cluster_parts_are_valid_and_reachable_at_the_documented_address():
    """The operator's DaskCluster: its pod specs and Service validate as Kubernetes objects."""
    cluster = yaml.safe_load((ROOT / "deploy" / "dask" / "training-cluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("kubernetes.dask.org/v1", "DaskCluster")
    spec, name = cluster["spec"], cluster["metadata"]["name"]
    for role in ("scheduler", "worker"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": role}}
        kubernetes_validate.validate({**pod, "spec": spec[role]["spec"]}, KUBERNETES_VERSION, True)
        [container] = spec[role]["spec"]["containers"]
        assert container["image"].split(":")[0].endswith("mlops-code-location")
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-scheduler"}}
    kubernetes_validate.validate(
        {**service, "spec": spec["scheduler"]["service"]}, KUBERNETES_VERSION, True
    )
    assert spec["worker"]["replicas"] >= 2
    assert spec["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == name
    ports = {p["name"]: p["port"] for p in spec["scheduler"]["service"]["ports"]}
    assert ports["tcp-comm"] == 8786
    address = f"tcp://{name}-scheduler:{ports['tcp-comm']}"
    assert (
        f"MLOPS_DASK_SCHEDULER: {address}"
        in (ROOT / "deploy" / "kubernetes" / "platform.yaml").read_text()
    )
