"""Pure OTLP conversions specific to the receivers (OTLP metrics -> Prometheus samples)."""
