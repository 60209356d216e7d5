"""Operating relayq: the ``relayq`` CLI, the demo and its local provider."""

__all__ = ()
