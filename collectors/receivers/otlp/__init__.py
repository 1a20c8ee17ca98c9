"""OTLP receivers: gRPC (4317) and HTTP (4318) for traces, metrics and logs."""
