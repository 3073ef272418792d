"""Shared pieces of the paper-scale adapters (evochart, chartqa, math).

Sources are either a dataset from the Hugging Face hub (``datasets.load_dataset``; a local
``save_to_disk`` folder or data-files folder works the same way, which is how tests run
offline) or a local JSON / JSONL file of records. Options arrive as strings from the study
config, so every adapter checks them here and fails with one InputError naming the option.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any, Iterable, Sequence

from nsr.io import InputError
from nsr.tasks import graded_credit

SPLITS = ("train", "test")


def check_options(task: str, options: dict, known: Iterable[str]) -> dict[str, str | None]:
    """Reject unknown option names; return every known option as a string (or None if unset)."""
    known = tuple(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"{task}: unknown option(s) {unknown}; known options: {sorted(known)}")
    out = {}
    for key in known:
        value = options.get(key)
        if value is not None and not isinstance(value, (str, Path)):
            raise InputError(f"{task}: option {key!r} must be a string, got {type(value).__name__}")
        out[key] = None if value is None or str(value).strip() == "" else str(value).strip()
    return out


def check_split(task: str, split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"{task}: unknown split {split!r}; expected one of {list(SPLITS)}")


def pick_indices(total: int, num: int | None, seed: int, key: str) -> list[int]:
    """Seeded subset of ``range(total)``: all rows in source order when num is None, else the
    first ``num`` of a seeded shuffle (so a smaller subset is a prefix of a larger one)."""
    if num is None:
        return list(range(total))
    num = int(num)
    if num < 1:
        raise InputError(f"subset size must be >= 1, got {num}")
    order = list(range(total))
    random.Random(f"{key}/{seed}").shuffle(order)
    return order[:num]


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("dataset_dict.json", "state.json"))


def load_hub(task: str, hub_id: str, split: str, config: str | None = None, cache_dir: str | None = None):
    """A ``datasets.Dataset`` from the hub, a local ``save_to_disk`` folder, or a local
    data-files folder; every failure becomes one InputError naming the id and split."""
    import datasets

    path = Path(hub_id).expanduser()
    try:
        if _is_saved_dataset(path):
            data = datasets.load_from_disk(str(path))
            if isinstance(data, datasets.DatasetDict):
                if split not in data:
                    raise InputError(f"{task}: dataset {hub_id!r} has no split {split!r}; it has {list(data)}")
                data = data[split]
            return data
        configs = [c.strip() for c in config.split(",")] if config else [None]
        # Several configs (e.g. the 7 subjects of EleutherAI/hendrycks_math) are concatenated.
        parts = [datasets.load_dataset(hub_id, name=c, split=split, cache_dir=cache_dir) for c in configs]
        return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    except InputError:
        raise
    except Exception as exc:  # datasets raises many types (network, missing split, bad files)
        raise InputError(f"{task}: cannot load dataset {hub_id!r} (config {config!r}, split {split!r}): {exc}") from exc


def read_records(task: str, path: str | Path) -> list[dict]:
    """Records of a JSON file (a list, or an object holding one list) or a JSONL file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{task}: data file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{task}: {path}:{lineno}: not valid JSON ({exc})") from exc
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{task}: {path}: not valid JSON ({exc}); use .jsonl for one record per line") from exc
        if isinstance(records, dict):
            lists = [v for v in records.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise InputError(f"{task}: {path}: expected a list of records (or an object holding one list)")
            records = lists[0]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{task}: {path}: expected a list of JSON objects")
    if not records:
        raise InputError(f"{task}: {path}: no records")
    return records


def get_field(task: str, record: dict, candidates: Sequence[str], what: str, where: str,
              required: bool = True) -> Any:
    """The first present (non-null) field among ``candidates``; InputError naming them if none."""
    for name in candidates:
        if record.get(name) is not None:
            return record[name]
    if required:
        raise InputError(f"{task}: {where} has no {what} field {list(candidates)} "
                         f"(fields: {sorted(record)}); set option '{what}_field'")
    return None


def first_answer(value: Any) -> str:
    """Answers may be lists (ChartQA's label) or numbers: take the first, as a string."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def image_bytes(task: str, value: Any, where: str, image_root: Path | None) -> bytes:
    """PNG/JPEG bytes of an image given as bytes, a datasets Image dict {bytes, path}, a PIL
    image, or a file name relative to ``image_root``. Other formats are re-encoded as PNG."""
    from PIL import Image

    data = None
    if isinstance(value, dict):  # datasets.Image(decode=False)
        data, value = value.get("bytes"), value.get("path")
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        data = buf.getvalue()
    elif data is None and isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif data is None and isinstance(value, (str, Path)):
        file = Path(value) if image_root is None or Path(value).is_absolute() else image_root / value
        if not file.is_file():
            raise InputError(f"{task}: {where}: image file {file} does not exist")
        data = file.read_bytes()
    if data is None:
        raise InputError(f"{task}: {where}: no image (got {type(value).__name__})")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.load()  # decodes fully: a truncated file fails here, not in the trainer
            if fmt in ("PNG", "JPEG"):
                return data
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            return buf.getvalue()
    except Exception as exc:  # PIL raises several types for a bad file
        raise InputError(f"{task}: {where}: not a readable image ({exc})") from exc


def user_prompt(text: str, image: bool) -> list[dict]:
    """One user chat message; an image placeholder first for a VLM (TRL fills it from the
    row's ``image`` column, and Qwen2.5-VL's chat template turns it into vision tokens)."""
    if image:
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return [{"role": "user", "content": text}]


def check_unique_ids(task: str, rows: list[dict]) -> list[dict]:
    seen = set()
    for row in rows:
        if row["problem_id"] in seen:
            raise InputError(f"{task}: duplicate problem_id {row['problem_id']!r}; set option 'id_field' "
                             "to a unique field or leave it unset to number rows")
        seen.add(row["problem_id"])
    return rows


# ---------------------------------------------------------------- chart QA (evochart, chartqa)

# Field names tried in order unless an option names one: the ChartQA release (query, label,
# imgname), the HuggingFaceM4/ChartQA hub copy (query, label, image) and the common
# question/answer/image naming of chart QA JSON releases.
CHART_FIELDS = {
    "question": ("question", "query"),
    "answer": ("answer", "label", "answers"),
    "image": ("image", "imgname", "image_path", "img_path", "figure_path", "img"),
    "id": ("id", "question_id", "qid"),
}
# The ChartQA convention for short-answer chart QA (as in Qwen2.5-VL's ChartQA evaluation).
CHART_INSTRUCTION = "Answer the question using a single word or number."
CHART_OPTIONS = ("hub_id", "hub_config", "train_split", "test_split", "path", "train_path", "test_path",
                 "image_root", "question_field", "answer_field", "image_field", "id_field", "instruction",
                 "cache_dir", "credit")


def _chart_row(task: str, split: str, index: int, record: dict, fields: dict, where: str,
               image_root: Path | None, instruction: str) -> dict:
    question = str(get_field(task, record, fields["question"], "question", where)).strip()
    answer = first_answer(get_field(task, record, fields["answer"], "answer", where))
    if not answer:
        raise InputError(f"{task}: {where} has an empty answer")
    ident = get_field(task, record, fields["id"], "id", where, required=False)
    image = image_bytes(task, get_field(task, record, fields["image"], "image", where), where, image_root)
    return {
        "problem_id": f"{task}-{ident}" if ident is not None else f"{task}-{split}-{index:06d}",
        "prompt": user_prompt(f"{question}\n{instruction}", image=True),
        "answer": answer,
        "image": image,
        "question": question,
    }


def with_credit(rows: list[dict], graded: bool) -> list[dict]:
    """Option credit=graded: numeric answers earn partial credit outside the tolerance (nsr.rewards)."""
    return [{**row, "credit": "graded"} for row in rows] if graded else rows


def check_local_file(task: str, option: str, path: str | None) -> None:
    if path and not Path(path).expanduser().is_file():
        raise InputError(f"{task}: option '{option}': data file {path} does not exist")


def check_chart(task: str, split: str, options: dict, default_hub_id: str | None = None) -> dict[str, str | None]:
    """The options of a chart QA task for ``split`` (names, credit, image folder, a data source, local
    files present), without reading any data; returns them as check_options does."""
    check_split(task, split)
    opts = check_options(task, options, CHART_OPTIONS)
    graded_credit(task, opts["credit"])
    image_root = Path(opts["image_root"]).expanduser() if opts["image_root"] else None
    if image_root is not None and not image_root.is_dir():
        raise InputError(f"{task}: option 'image_root': {image_root} is not a folder")
    option = f"{split}_path" if opts[f"{split}_path"] else "path"
    check_local_file(task, option, opts[option])
    if not opts[option] and not (opts["hub_id"] or default_hub_id):
        raise InputError(f"{task}: no data source; set option 'hub_id' (a hub dataset or a local "
                         f"save_to_disk folder) or '{split}_path'/'path' (JSON/JSONL) plus 'image_root'")
    return opts


def load_chart(task: str, split: str, num: int | None, seed: int, options: dict,
               default_hub_id: str | None = None) -> list[dict]:
    """Chart QA rows {problem_id, prompt (chat messages with an image slot), answer, image (bytes),
    question, credit (option credit=graded only)} from a hub dataset or a local JSON/JSONL file plus
    an image folder."""
    opts = check_chart(task, split, options, default_hub_id)
    graded = graded_credit(task, opts["credit"])
    fields = {k: ((opts[f"{k}_field"],) if opts[f"{k}_field"] else v) for k, v in CHART_FIELDS.items()}
    instruction = opts["instruction"] or CHART_INSTRUCTION
    image_root = Path(opts["image_root"]).expanduser() if opts["image_root"] else None
    path = opts[f"{split}_path"] or opts["path"]
    hub_id = opts["hub_id"] or default_hub_id
    key = f"{task}/{split}"

    if path:
        records = read_records(task, path)
        root = image_root or Path(path).expanduser().parent  # image names relative to the JSON file
        picked = pick_indices(len(records), num, seed, key)
        rows = [_chart_row(task, split, i, records[i], fields, f"{path} record {i}", root, instruction)
                for i in picked]
        return with_credit(check_unique_ids(task, rows), graded)

    import datasets

    data = load_hub(task, hub_id, opts[f"{split}_split"] or split, opts["hub_config"], opts["cache_dir"])
    columns = set(data.column_names)
    resolved = {}
    for what, names in fields.items():
        present = [n for n in names if n in columns]
        if not present and what != "id":
            raise InputError(f"{task}: dataset {hub_id!r} has no {what} column {list(names)} "
                             f"(columns: {sorted(columns)}); set option '{what}_field'")
        resolved[what] = tuple(present)
    image_col = resolved["image"][0]
    if isinstance(data.features[image_col], datasets.Image):
        data = data.cast_column(image_col, datasets.Image(decode=False))  # raw bytes, no decode/re-encode
    picked = pick_indices(len(data), num, seed, key)
    rows = [_chart_row(task, split, i, record, resolved, f"{hub_id} {split} row {i}", image_root, instruction)
            for i, record in zip(picked, data.select(picked))]
    return with_credit(check_unique_ids(task, rows), graded)
