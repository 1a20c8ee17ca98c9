"""Pure StatsD protocol: datagram lines and DogStatsD events -> typed records."""
