"""What a worker takes from the watched cascade configuration: the live batch size, time scale and
sampler settings (the file is watched by :class:`hadis.cascade_watch.CascadeConfigWatcher`)."""

from __future__ import annotations

from dataclasses import dataclass

from hadis.api.wire import CascadeConfig


@dataclass(frozen=True)
class VariantRuntime:
    """What one worker takes from the cascade configuration (or its settings before one exists)."""

    batch_size: int
    time_scale: float = 1.0
    steps: int | None = None
    guidance_scale: float | None = None
    generation: int | None = None
    listed: bool = True

    @classmethod
    def from_config(cls, config: CascadeConfig, variant: str, previous: VariantRuntime) -> VariantRuntime:
        """This variant's part of ``config``; a config that does not list the variant keeps the batch size."""
        entry = config.variants.get(variant)
        if entry is None:
            return cls(
                batch_size=previous.batch_size,
                time_scale=config.time_scale,
                steps=previous.steps,
                guidance_scale=previous.guidance_scale,
                generation=config.generation,
                listed=False,
            )
        return cls(
            batch_size=entry.batch_size,
            time_scale=config.time_scale,
            steps=entry.steps,
            guidance_scale=entry.guidance_scale,
            generation=config.generation,
        )
