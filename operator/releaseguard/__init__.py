"""ReleaseGuard: a Kubernetes operator that contains bad releases with the cheapest step."""
