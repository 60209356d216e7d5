"""The producer SDK: ``Producer`` (asyncio) and ``SyncProducer`` (blocking).

async with Producer() as producer:
    message_id = await producer.send(
        tenant="acme", conversation="c-42", recipient="+15550100",
        payload={"text": "Your order is ready"}, priority="high",
    )
"""

from relayq.producers.async_producer import Producer
from relayq.producers.send_request import SendRequest, SendResult
from relayq.producers.sync_producer import SyncProducer

__all__ = ("Producer", "SendRequest", "SendResult", "SyncProducer")
