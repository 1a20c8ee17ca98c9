"""The collectors' bottom layer: errors, records, sink contracts, settings helpers, self-metrics."""
