"""The Redis-backed telemetry store: metrics as compressed chunks with a label index,
spans grouped per trace, logs in Streams. ``keys`` holds the whole Redis key schema."""
