"""ValidatingAdmissionPolicy expressions that use the CEL libraries (quantity, URLs, regex, strings,
CIDR) and the authorizer, through a real server with kubectl."""
from __future__ import annotations

import json

from tests.e2e.cluster import Cluster

LIBRARY_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: t-cel-lib}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["configmaps"]}
    objectSelector: {matchLabels: {vap: lib}}
  validations:
  - expression: "!has(object.data.memory) || quantity(object.data.memory).isLessThan(quantity('1Gi'))"
    message: memory must be below 1Gi
  - expression: "!has(object.data.endpoint) || (isURL(object.data.endpoint) &&
      url(object.data.endpoint).getScheme() == 'https')"
    messageExpression: "'endpoint must be an https URL, got ' + object.data.endpoint"
  - expression: "!has(object.data.version) || object.data.version.find('^v[0-9]+[.][0-9]+$') != ''"
    message: version must look like v1.2
  - expression: "!has(object.data.owner) || object.data.owner.lowerAscii().split('@').size() == 2"
    message: owner must be an email address
  - expression: "!has(object.data.subnet) || cidr('10.0.0.0/8').containsCIDR(object.data.subnet)"
    message: subnet must be inside 10.0.0.0/8
"""

AUTHZ_POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: t-cel-authz}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
    objectSelector: {matchLabels: {vap: authz}}
  validations:
  - expression: "authorizer.group('').resource('pods').check('delete').allowed()"
    message: only users who may delete pods may create these
    reason: Forbidden
"""

BINDING = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: %(name)s}
spec:
  policyName: %(name)s
  validationActions: [Deny]
"""


def _configmap(name: str, label: str, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {"vap": label}}, "data": data})


def _denied(policy: str, message: str) -> str:
    return f"ValidatingAdmissionPolicy '{policy}' with binding '{policy}' denied request: {message}"


def test_policy_with_library_functions(cluster: Cluster, ns: str) -> None:
    try:
        cluster.ok("apply", "-f", "-", input=LIBRARY_POLICY)
        cluster.ok("apply", "-f", "-", input=BINDING % {"name": "t-cel-lib"})
        good = _configmap("good", "lib", memory="512Mi", endpoint="https://example.com:8443/api",
                          version="v1.33", owner="Ops@Example.com", subnet="10.1.0.0/16")
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=good)
        assert r.code == 0, r.stderr
        cases = [
            ({"memory": "2Gi"}, "memory must be below 1Gi"),
            ({"endpoint": "http://example.com/"}, "endpoint must be an https URL, got http://example.com/"),
            ({"endpoint": "../relative"}, "endpoint must be an https URL, got ../relative"),
            ({"version": "1.33"}, "version must look like v1.2"),
            ({"owner": "nobody"}, "owner must be an email address"),
            ({"subnet": "192.168.0.0/24"}, "subnet must be inside 10.0.0.0/8"),
        ]
        for i, (data, message) in enumerate(cases):
            r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap(f"bad-{i}", "lib", **data))
            assert r.code != 0
            # Reason Invalid: kubectl prints the Status's one cause, which has no field.
            assert f'The configmaps "bad-{i}" is invalid: : ' + _denied("t-cel-lib", message) in r.stderr, r.stderr
        # A value the library cannot parse fails the expression (failurePolicy Fail) with upstream's text.
        code, _, body = cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                        json.loads(_configmap("lots", "lib", memory="lots")))
        assert (code, body["reason"]) == (422, "Invalid")
        assert body["details"]["causes"] == [{"message": body["message"].split(" is forbidden: ", 1)[1]}]
        assert body["message"] == ('configmaps "lots" is forbidden: ' + _denied(
            "t-cel-lib", "expression '!has(object.data.memory) || quantity(object.data.memory).isLessThan("
            "quantity('1Gi'))' resulted in error: quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", "t-cel-lib", "--ignore-not-found")
        cluster.kubectl("delete", "validatingadmissionpolicy", "t-cel-lib", "--ignore-not-found")


def test_policy_with_authorizer_checks_the_requesting_user(cluster: Cluster, ns: str) -> None:
    deleter, creator = f"{ns}-deleter", f"{ns}-creator"
    try:
        cluster.ok("create", "role", "cm-writer", "-n", ns, "--verb=create,get", "--resource=configmaps")
        cluster.ok("create", "rolebinding", "cm-writers", "-n", ns, "--role=cm-writer",
                   f"--user={deleter}", f"--user={creator}")
        cluster.ok("create", "clusterrole", f"{ns}-pod-deleter", "--verb=delete", "--resource=pods")
        cluster.ok("create", "clusterrolebinding", f"{ns}-pod-deleters", f"--clusterrole={ns}-pod-deleter",
                   f"--user={deleter}")
        cluster.ok("apply", "-f", "-", input=AUTHZ_POLICY)
        cluster.ok("apply", "-f", "-", input=BINDING % {"name": "t-cel-authz"})

        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap("by-deleter", "authz"),
                            kubeconfig=cluster.kubeconfig_for(deleter))
        assert r.code == 0, r.stderr
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap("by-creator", "authz"),
                            kubeconfig=cluster.kubeconfig_for(creator))
        assert r.code != 0
        assert ('Error from server (Forbidden): error when creating "STDIN": configmaps "by-creator" is forbidden: '
                + _denied("t-cel-authz", "only users who may delete pods may create these")) in r.stderr, r.stderr
        # Objects the policy does not select are not affected.
        r = cluster.kubectl("create", "-n", ns, "-f", "-", input=_configmap("plain", "other"),
                            kubeconfig=cluster.kubeconfig_for(creator))
        assert r.code == 0, r.stderr
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", "t-cel-authz", "--ignore-not-found")
        cluster.kubectl("delete", "validatingadmissionpolicy", "t-cel-authz", "--ignore-not-found")
        cluster.kubectl("delete", "clusterrolebinding", f"{ns}-pod-deleters", "--ignore-not-found")
        cluster.kubectl("delete", "clusterrole", f"{ns}-pod-deleter", "--ignore-not-found")


def test_policy_calling_an_unknown_function_is_refused(cluster: Cluster) -> None:
    bad = LIBRARY_POLICY.replace("t-cel-lib", "t-cel-unknown").replace(
        "quantity(object.data.memory).isLessThan(quantity('1Gi'))", "object.data.memory.frobnicate()")
    r = cluster.kubectl("create", "-f", "-", input=bad)
    assert r.code != 0
    assert ('The ValidatingAdmissionPolicy "t-cel-unknown" is invalid: spec.validations[0].expression: Invalid '
            'value: "!has(object.data.memory) || object.data.memory.frobnicate()": compilation failed: ERROR: '
            "<input>:1:58: undeclared reference to 'frobnicate' (in container '')\n"
            " | !has(object.data.memory) || object.data.memory.frobnicate()\n"
            " | " + "." * 57 + "^") in r.stderr, r.stderr
    r = cluster.kubectl("create", "-f", "-", input=bad.replace("frobnicate()", "isSorted()"))
    assert r.code == 0, r.stderr
    cluster.ok("delete", "validatingadmissionpolicy", "t-cel-unknown")
