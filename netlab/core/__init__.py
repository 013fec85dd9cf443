"""The pure pipeline: addresses (IPAM), steps, the plan, the backends. No I/O, no kernel."""
