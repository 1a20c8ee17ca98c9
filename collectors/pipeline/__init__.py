"""Between receivers and the store: resource labels, memory limit, batching (one sink)."""

from collectors.pipeline.memory import MemoryLimiter, MemoryLimitError, MemorySettings
from collectors.pipeline.pipeline import BatchSettings, Pipeline, PipelineSettings

__all__ = [
    "BatchSettings",
    "MemoryLimitError",
    "MemoryLimiter",
    "MemorySettings",
    "Pipeline",
    "PipelineSettings",
]
