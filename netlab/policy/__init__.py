"""NetworkPolicy (networking.k8s.io/v1): model, loader, oracle and nftables compiler, all pure."""
