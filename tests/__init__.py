"""relayq's test suite: real redis-server processes, real HTTP providers, real workers."""
