"""The ``meshfed`` command and the developer sandbox; it wires the federator and the
collectors together but neither of them imports it."""

__version__ = "0.1.0"
