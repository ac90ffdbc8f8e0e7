"""deploy/kubernetes, checked offline: the kustomization renders, every
manifest validates in strict mode against the Kubernetes 1.32 schemas, and
the promises of the README hold in the parsed manifests."""

import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from config import HEALTH_CHECK_TIMEOUT
from tests.conftest import PROJECT

KUBERNETES = "1.32.0"
pytestmark = pytest.mark.skipif(
    not shutil.which("kubectl"), reason="kubectl is not installed"
)


@pytest.fixture(scope="module")
def manifests():
    """The rendered manifests, by kind."""
    return render_manifests()


def render_manifests():
    """Render deploy/kubernetes with kubectl; return the manifests by kind."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(PROJECT / "deploy" / "kubernetes")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out)}


@pytest.fixture(scope="module")
def pod(manifests):
    """The Deployment's pod spec."""
    return manifests["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def app(pod):
    """The app's container."""
    (container,) = pod["containers"]
    return container


def test_every_manifest_validates_strictly(manifests):
    assert set(manifests) == {
        "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "Ingress",
    }  # fmt: skip
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_a_misspelt_field_fails_validation(manifests):
    broken = yaml.safe_load(yaml.safe_dump(manifests["Deployment"]))
    context = broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_rollouts_keep_capacity(manifests):
    spec = manifests["Deployment"]["spec"]
    assert "replicas" not in spec, "kubectl apply would undo the autoscaler"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = manifests["PodDisruptionBudget"]["spec"]
    assert budget["minAvailable"] >= 1
    pods = spec["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= pods.items()
    assert budget["selector"]["matchLabels"], "a budget that covers no pod"
    assert manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2


def test_probes_ask_the_right_routes(app):
    assert app["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # Liveness by TCP: an HTTP probe fails while every worker thread is busy.
    assert app["livenessProbe"]["tcpSocket"]["port"] == "http"
    assert app["readinessProbe"]["timeoutSeconds"] > HEALTH_CHECK_TIMEOUT
    assert app["startupProbe"]["httpGet"]["path"] == "/health/ping"


def test_the_grace_period_covers_the_delay_and_the_graceful_timeout(
    manifests, pod, app
):
    delay = int(app["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = int(manifests["ConfigMap"]["data"]["GRACEFUL_TIMEOUT"])
    assert delay > 0
    assert pod["terminationGracePeriodSeconds"] > delay + graceful


def test_the_pod_meets_the_restricted_standard(pod, app):
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    context = app["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"]["drop"] == ["ALL"]
    (volume,) = pod["volumes"]  # /tmp only: for uploads
    assert "emptyDir" in volume
    assert app["volumeMounts"] == [{"name": volume["name"], "mountPath": "/tmp"}]


def test_resources_and_workers_follow_the_pod(app):
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(app["resources"][kind])
    (workers,) = [e for e in app["env"] if e["name"] == "WEB_CONCURRENCY"]
    assert workers["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"


def test_the_key_comes_from_a_secret_and_no_secret_is_written(manifests, app):
    (key,) = [e for e in app["env"] if e["name"] == "FLASK_SECRET_KEY"]
    assert "secretKeyRef" in key["valueFrom"]
    assert "Secret" not in manifests
    text = "\n".join(
        p.read_text() for p in (PROJECT / "deploy" / "kubernetes").iterdir()
    )
    assert not re.search(r"SECRET_KEY\s*[=:]\s*\S", text)


def test_the_ingress_matches_nginx_site_conf(manifests):
    ingress = manifests["Ingress"]
    assert ingress["spec"]["tls"]
    notes = ingress["metadata"]["annotations"]
    site = (PROJECT / "deploy" / "nginx-site.conf").read_text()
    size = re.search(r"client_max_body_size (\S+);", site)[1]
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == size
    assert notes["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
