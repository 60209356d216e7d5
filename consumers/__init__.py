"""The worker: partitions by lease, conversations in order, retries, dead letters, shutdown."""

from consumers.deliverer_factory import build_deliverer
from consumers.simple_deliverers import NoopDeliverer, SinkDeliverer
from consumers.webhook_deliverer import WebhookDeliverer
from consumers.worker import Worker

__all__ = ("NoopDeliverer", "SinkDeliverer", "WebhookDeliverer", "Worker", "build_deliverer")
