"""Hardening checks of rendered chart output (one file per chart/ci value set).

Run by .ci/chart: python3 .ci/chart-checks.py OUT/*.yaml. Exits non-zero with every problem.
"""

import os
import sys

import yaml

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


for path in sys.argv[1:]:
    name = os.path.basename(path)[: -len(".yaml")]
    if name == "bad":
        continue
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    release = f"ci-{name}"
    where = f"[{name}]"
    values = yaml.safe_load(open(f"chart/ci/{name}-values.yaml")) or {}

    for d in docs:
        check(d["metadata"]["name"].startswith(release) or d["kind"] in ("ClusterRole", "ClusterRoleBinding"),
              f"{where} {d['kind']} {d['metadata']['name']} is not named from the release")

    (dep,) = by_kind["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    psc, sc = pod["securityContext"], c["securityContext"]
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where} no seccompProfile RuntimeDefault")
    check(psc.get("runAsNonRoot") is True, f"{where} not runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where} root filesystem writable")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where} privilege escalation allowed")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where} capabilities not dropped")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check("/tmp" in mounts and "emptyDir" in vols[mounts["/tmp"]], f"{where} no emptyDir /tmp")
    check(c["resources"].get("requests") and c["resources"].get("limits"), f"{where} no requests/limits")
    env = env_of(c)
    group = (values.get("nats") or {}).get("queueGroup") or release
    check(env["PUBSUB_GROUP"]["value"].startswith(group), f"{where} queue group not from the release")
    for k, e in env.items():
        if k in ("API_TOKEN", "NATS_PASSWORD", "NATS_TOKEN", "KEPTN_API_TOKEN", "PROMETHEUS_PASSWORD", "PROMETHEUS_TOKEN"):
            check("valueFrom" in e and "secretKeyRef" in e["valueFrom"], f"{where} {k} not from a Secret")

    bindings = by_kind.get("RoleBinding", []) + by_kind.get("ClusterRoleBinding", [])
    # With deploy.namespaceSelector the operator binds the deployer ClusterRole (NOTES.txt).
    operator_binds = bool((values.get("deploy") or {}).get("namespaceSelector")) and any(
        cr["metadata"]["name"].endswith("-deployer") for cr in by_kind.get("ClusterRole", []))
    check(pod["automountServiceAccountToken"] == (bool(bindings) or operator_binds),
          f"{where} token mounted={pod['automountServiceAccountToken']} but {len(bindings)} bindings")

    for role in by_kind.get("Role", []) + by_kind.get("ClusterRole", []):
        for rule in role["rules"]:
            check("*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []),
                  f"{where} wildcard in {role['metadata']['name']}")
    backend = env["KEPTN_NATIVE_DEPLOY_BACKEND"]["value"]
    rules_for = env.get("KEPTN_NATIVE_DEPLOY_BACKEND_FOR", {}).get("value", "")
    if backend == "kubernetes" and "helm" not in rules_for:
        for role in by_kind.get("Role", []):
            resources = {r for rule in role["rules"] for r in rule["resources"]}
            check("secrets" not in resources, f"{where} the kubernetes backend's role reads Secrets")
    creates_ns = env["KEPTN_NATIVE_DEPLOY_CREATE_NAMESPACE"]["value"] == "true"
    ns_rules = [r for cr in by_kind.get("ClusterRole", []) for r in cr["rules"] if "namespaces" in r["resources"]]
    check(bool(ns_rules) == creates_ns, f"{where} Namespace permissions ({len(ns_rules)} rules) without createNamespaces={creates_ns}")
    if name in ("defaults", "kubernetes"):
        check(not by_kind.get("ClusterRole") and not by_kind.get("ClusterRoleBinding"),
              f"{where} cluster-wide RBAC by default")

    for pvc in by_kind.get("PersistentVolumeClaim", []):
        check(pvc["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
              f"{where} PVC not kept on uninstall")
    replicas = dep["spec"]["replicas"]
    check(bool(by_kind.get("PodDisruptionBudget")) == (replicas > 1), f"{where} PDB and replicas={replicas} disagree")
    if name != "process":
        (np,) = by_kind["NetworkPolicy"]
        check(set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{where} NetworkPolicy not both ways")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"hardening checks passed for {len(sys.argv) - 1} renderings")
