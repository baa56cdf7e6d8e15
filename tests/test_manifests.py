"""Kubernetes manifests validate offline against the Kubernetes schemas (no cluster here)."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
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
