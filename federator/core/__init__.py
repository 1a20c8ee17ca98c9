"""The federator's pure core: model, config, desired -> render -> diff. No I/O (import-linter)."""
