"""Cluster PKI: kubeadm's certificate layout, kubeconfigs, and the helpers they are built on."""

from kubegate.pki.certs import PKIError
from kubegate.pki.kubeconfig import load_kubeconfig, set_kubeconfig_server, write_kubeconfig
from kubegate.pki.layout import InitResult, PKIPaths, init_pki

__all__ = [
    "InitResult",
    "PKIError",
    "PKIPaths",
    "init_pki",
    "load_kubeconfig",
    "set_kubeconfig_server",
    "write_kubeconfig",
]
