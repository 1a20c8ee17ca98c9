"""Protocol servers: StatsD, Fluentd Forward, Prometheus remote_write (+ pull), OTLP.

Each receiver is a :class:`collectors._core.component.Component` that parses with a pure parser
from :mod:`collectors.parsers`, hands records to a :class:`collectors._core.component.TelemetrySink`
and acknowledges its sender only after the sink returned.
"""
