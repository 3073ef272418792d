"""ChartQA (Masry et al. 2022) from the hub copy HuggingFaceM4/ChartQA (query / label / image;
splits train, val, test; ``label`` is a list of answers, the first is used). The same options
as evochart select another hub id, field names, split names, or a local JSON + image folder
(the original release: train/val/test JSON with imgname / query / label, plus png/ folders).
"""

from __future__ import annotations

from nsr.tasks._common import CHART_OPTIONS, check_chart, load_chart

HUB_ID = "HuggingFaceM4/ChartQA"
OPTIONS = CHART_OPTIONS


def check(split: str, options: dict) -> dict:
    """Option names and values for ``split`` and local files present, without reading any data."""
    return check_chart("chartqa", split, options, default_hub_id=HUB_ID)


def load(split: str, num: int | None, seed: int, **options) -> list[dict]:
    return load_chart("chartqa", split, num, seed, options, default_hub_id=HUB_ID)
