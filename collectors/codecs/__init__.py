"""Pure conversions between meshfed's records and wire formats shared by several layers (OTLP)."""
