"""Unit tests of the federator's pure core (config, desired, render, diff)."""
