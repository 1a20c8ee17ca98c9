"""SIGKILL of the embedded Redis and of ``meshfed collect`` while several senders stream."""
