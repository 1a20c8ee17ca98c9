"""Pure Forward protocol: bounded msgpack decoding, message modes, event -> LogRecord."""
