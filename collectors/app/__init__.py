"""The collector application: configuration, the Collector that starts everything, the CLI."""
