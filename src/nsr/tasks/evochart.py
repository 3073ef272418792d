"""EvoChart chart QA (Huang et al. 2024, arXiv 2409.01577): the seed guide's Qwen2.5-VL-3B study
(34,194 training QA pairs; EvoChart-QA's 1,250 real-world questions as the test set).

EvoChart has no official hub copy (the EvoChart-QA benchmark is released as a download of
JSON + chart images), so there is no default source: set either

  * ``hub_id``: a hub dataset (or a local ``save_to_disk`` folder) with question / answer /
    image columns (``question_field``, ``answer_field``, ``image_field``, ``id_field``;
    split names via ``train_split`` / ``test_split``), or
  * ``train_path`` / ``test_path`` (or ``path``): a JSON or JSONL file of QA records that name
    their chart by a file name relative to ``image_root`` (default: the JSON file's folder).

Field names default to the usual chart-QA spellings (question|query, answer|label,
image|imgname|image_path, id|question_id); list answers take their first element.
Option ``credit=graded``: a numeric answer outside the 5% tolerance earns partial credit
(nsr.rewards); the default is binary, the paper's setting.
"""

from __future__ import annotations

from nsr.tasks._common import CHART_OPTIONS, check_chart, load_chart

OPTIONS = CHART_OPTIONS


def check(split: str, options: dict) -> dict:
    """Option names and values for ``split`` and local files present, without reading any data."""
    return check_chart("evochart", split, options)


def load(split: str, num: int | None, seed: int, **options) -> list[dict]:
    return load_chart("evochart", split, num, seed, options)
