"""relayq's benchmark suite: raw Redis ceilings, Python peers and relayq's own scenarios."""
