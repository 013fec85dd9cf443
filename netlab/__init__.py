"""netlab: Kubernetes-style pod networks out of Linux network namespaces (layers: docs/architecture.md)."""
