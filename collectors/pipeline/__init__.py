"""Between receivers and the store: resource labels, memory limit, batching (one sink)."""

from collectors._core.errors import MemoryLimitError
from collectors.pipeline.memory import MemoryLimiter, MemorySettings
from collectors.pipeline.pipeline import BatchSettings, Pipeline, PipelineSettings

__all__ = [
    "BatchSettings",
    "MemoryLimitError",
    "MemoryLimiter",
    "MemorySettings",
    "Pipeline",
    "PipelineSettings",
]
