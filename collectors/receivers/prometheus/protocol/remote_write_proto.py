"""The ``prometheus.WriteRequest`` message classes, built from a descriptor written in code.

Remote write 1.0 needs five small messages (WriteRequest, TimeSeries, Label, Sample,
MetricMetadata; field numbers as in Prometheus's ``prompb/remote.proto`` and
``prompb/types.proto``). Declaring them here instead of compiling a ``.proto`` file means no
build step and no generated code, while parsing still runs in protobuf's C (upb) decoder.
Exemplars and native histograms (TimeSeries fields 3 and 4) are not declared: the decoder
skips them as unknown fields. ``RawWriteRequest`` is the same wire message with every
``TimeSeries`` kept as bytes: the parser reads the common layout of a series itself and
recognises a series it has seen before by its raw label bytes, without decoding them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_REPEATED = _F.LABEL_REPEATED
_OPTIONAL = _F.LABEL_OPTIONAL

# (message, [(field name, number, type, label, type name)])
_MESSAGES: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    (
        "WriteRequest",
        [
            ("timeseries", 1, _F.TYPE_MESSAGE, _REPEATED, ".meshfed.prometheus.TimeSeries"),
            ("metadata", 3, _F.TYPE_MESSAGE, _REPEATED, ".meshfed.prometheus.MetricMetadata"),
        ],
    ),
    (
        "RawWriteRequest",
        [
            ("timeseries", 1, _F.TYPE_BYTES, _REPEATED, ""),
            ("metadata", 3, _F.TYPE_MESSAGE, _REPEATED, ".meshfed.prometheus.MetricMetadata"),
        ],
    ),
    (
        "TimeSeries",
        [
            ("labels", 1, _F.TYPE_MESSAGE, _REPEATED, ".meshfed.prometheus.Label"),
            ("samples", 2, _F.TYPE_MESSAGE, _REPEATED, ".meshfed.prometheus.Sample"),
        ],
    ),
    (
        "Label",
        [("name", 1, _F.TYPE_STRING, _OPTIONAL, ""), ("value", 2, _F.TYPE_STRING, _OPTIONAL, "")],
    ),
    (
        "Sample",
        [
            ("value", 1, _F.TYPE_DOUBLE, _OPTIONAL, ""),
            ("timestamp", 2, _F.TYPE_INT64, _OPTIONAL, ""),
        ],
    ),
    (
        "MetricMetadata",
        [
            ("type", 1, _F.TYPE_INT32, _OPTIONAL, ""),  # an enum on the wire is a varint
            ("metric_family_name", 2, _F.TYPE_STRING, _OPTIONAL, ""),
            ("help", 4, _F.TYPE_STRING, _OPTIONAL, ""),
            ("unit", 5, _F.TYPE_STRING, _OPTIONAL, ""),
        ],
    ),
]

METADATA_TYPES = {
    0: "unknown",
    1: "counter",
    2: "gauge",
    3: "histogram",
    4: "gaugehistogram",
    5: "summary",
    6: "info",
    7: "stateset",
}
"""``MetricMetadata.MetricType`` numbering."""


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="meshfed/prometheus/remote.proto", package="meshfed.prometheus", syntax="proto3"
    )
    for name, fields in _MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"meshfed.prometheus.{name}")
        )
        for name, _ in _MESSAGES
    }


_CLASSES = _build()
WriteRequest: Any = _CLASSES["WriteRequest"]
"""The message class; ``WriteRequest.FromString(data)`` parses, ``SerializeToString()`` writes."""
RawWriteRequest: Any = _CLASSES["RawWriteRequest"]
"""The same wire message with each ``TimeSeries`` left as its serialized bytes."""
TimeSeries: Any = _CLASSES["TimeSeries"]
"""One series, for the bytes ``RawWriteRequest`` leaves unparsed."""
