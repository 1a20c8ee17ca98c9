"""Pure remote_write protocol: snappy-framed WriteRequest bodies -> series batches."""
