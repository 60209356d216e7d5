"""The worker: partitions by lease, conversations in order, retries, dead letters, shutdown."""

from relayq.consumers.deliverer_factory import build_deliverer
from relayq.consumers.simple_deliverers import NoopDeliverer, SinkDeliverer
from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.consumers.worker import Worker

__all__ = ("NoopDeliverer", "SinkDeliverer", "WebhookDeliverer", "Worker", "build_deliverer")
