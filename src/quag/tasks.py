"""Task names, used verbatim in config keys, CLI flags, metric keys and file names (they match HiREST)."""

from __future__ import annotations

from typing import Literal, get_args

Task = Literal["moment_retrieval", "moment_segmentation", "step_captioning"]
TASKS: tuple[Task, ...] = get_args(Task)


def check_task(name: str) -> Task:
    """Return ``name`` as a :data:`Task`, or raise ``ValueError`` listing the valid names."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return name
