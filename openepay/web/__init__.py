"""Pages for buyers (cashier), the sandbox's simulated upstream, health and metrics."""
