"""StatsD / DogStatsD receiver: config, UDP/TCP transport, per-interval aggregation, flush."""
