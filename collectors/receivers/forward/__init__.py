"""Fluentd Forward receiver: config, handshake, TCP/TLS transport with UDP heartbeat."""
