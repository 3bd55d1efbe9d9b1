"""Effects: Prometheus queries and Kubernetes reads/writes. Synchronous; call off the event loop."""
