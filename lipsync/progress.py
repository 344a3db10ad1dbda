"""The stages a request goes through, and the share of the progress bar each one gets."""

from __future__ import annotations

from enum import Enum
from typing import Callable

ProgressFn = Callable[[float, str], None]  # (fraction of the whole request, stage name)


class Stage(str, Enum):
    SPEECH = "speech"
    DETECT = "detect"
    GENERATE = "generate"
    ENHANCE = "enhance"  # generating with face restoration: the same span of the bar as GENERATE
    ENCODE = "encode"


STAGES: dict[Stage, tuple[float, float]] = {
    Stage.SPEECH: (0.0, 0.05), Stage.DETECT: (0.05, 0.25), Stage.GENERATE: (0.25, 0.97),
    Stage.ENHANCE: (0.25, 0.97), Stage.ENCODE: (0.97, 1.0),
}


def report(progress: ProgressFn | None, stage: Stage, fraction: float) -> None:
    if progress is not None:
        start, end = STAGES[stage]
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), stage.value)
