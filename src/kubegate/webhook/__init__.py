"""Clients for remote services the API server calls (token review, authorization, admission), configured
by kubeconfig-format files as upstream's apiserver/pkg/util/webhook."""
from kubegate.webhook.client import Backoff, WebhookClient, WebhookConfigError, WebhookError, load_webhook_kubeconfig

__all__ = ["Backoff", "WebhookClient", "WebhookConfigError", "WebhookError", "load_webhook_kubeconfig"]
