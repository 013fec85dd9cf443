"""NetworkPolicy conformance cases, shared by the unit (oracle) and kernel (probe) tiers."""
