"""Competition math as in the paper (Zhu et al. 2025): MATH train (7,500 problems), and for
split "test" one of MATH-500, AIME25 or AMC23 (option ``test_set``), or a local JSON/JSONL file.

Hub defaults (each configurable): train ``DigitalLearningGmbH/MATH-lighteval`` (the 7,500
MATH training problems in one config; ``EleutherAI/hendrycks_math`` works with
``train_hub_config`` set to its 7 subject configs, comma-separated), MATH-500
``HuggingFaceH4/MATH-500``, AIME25 ``math-ai/aime25``, AMC23 ``math-ai/amc23``.
The gold answer is the ``answer`` field, else the last \\boxed{} of the solution; completions
are scored by nsr.rewards.score (math-verify for LaTeX).
"""

from __future__ import annotations

from nsr.io import InputError
from nsr.tasks._common import (check_local_file, check_options, check_split, check_unique_ids, first_answer, get_field,
                               load_hub, pick_indices, read_records, user_prompt)

TRAIN_HUB_ID = "DigitalLearningGmbH/MATH-lighteval"
TEST_SETS = {"math500": "HuggingFaceH4/MATH-500", "aime25": "math-ai/aime25", "amc23": "math-ai/amc23"}
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
FIELDS = {
    "question": ("problem", "question", "Problem", "Question"),
    "answer": ("answer", "Answer"),
    "solution": ("solution", "Solution"),
    "id": ("unique_id", "id", "ID", "problem_id"),
}
OPTIONS = ("test_set", "train_hub_id", "train_hub_config", "test_hub_id", "test_hub_config", "train_split",
           "test_split", "path", "train_path", "test_path", "question_field", "answer_field",
           "solution_field", "id_field", "instruction", "cache_dir")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} (balanced braces) or \\boxed X, else None."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start + (6 if text.startswith("\\boxed", start) else 5):]
    if rest.startswith(" "):  # "\boxed 5": up to the next space or $
        value = rest.strip().split("$", 1)[0].split()
        return value[0] if value else None
    if not rest.startswith("{"):
        return None
    depth = 0
    for i, ch in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            return rest[1:i].strip()
    return None  # unbalanced


def _row(split: str, source: str, index: int, record: dict, fields: dict, where: str, instruction: str) -> dict:
    problem = str(get_field("math", record, fields["question"], "question", where)).strip()
    answer = get_field("math", record, fields["answer"], "answer", where, required=False)
    if answer is None or first_answer(answer) == "":
        solution = get_field("math", record, fields["solution"], "solution", where, required=False)
        answer = last_boxed(str(solution)) if solution is not None else None
        if not answer:
            raise InputError(f"math: {where} has no answer field {list(fields['answer'])} and no \\boxed{{}} "
                             f"answer in a solution field {list(fields['solution'])} (fields: {sorted(record)})")
    ident = get_field("math", record, fields["id"], "id", where, required=False)
    return {
        "problem_id": f"{source}-{ident}" if ident is not None else f"{source}-{split}-{index:05d}",
        "prompt": user_prompt(f"{problem}\n{instruction}", image=False),
        "answer": first_answer(answer),
        "question": problem,
        "source": source,
    }


def check(split: str, options: dict) -> dict[str, str | None]:
    """Option names and values for ``split`` and local files present, without reading any data."""
    check_split("math", split)
    opts = check_options("math", options, OPTIONS)
    if (opts["test_set"] or "math500") not in TEST_SETS:
        raise InputError(f"math: option 'test_set' must be one of {list(TEST_SETS)}, got {opts['test_set']!r}")
    option = f"{split}_path" if opts[f"{split}_path"] else "path"
    check_local_file("math", option, opts[option])
    return opts


def load(split: str, num: int | None, seed: int, **options) -> list[dict]:
    opts = check(split, options)
    test_set = opts["test_set"] or "math500"
    fields = {k: ((opts[f"{k}_field"],) if opts[f"{k}_field"] else v) for k, v in FIELDS.items()}
    instruction = opts["instruction"] or INSTRUCTION
    source = "math" if split == "train" else test_set
    path = opts[f"{split}_path"] or opts["path"]
    if path:
        records, where = read_records("math", path), f"{path} record"
    else:
        hub_id = opts[f"{split}_hub_id"] or (TRAIN_HUB_ID if split == "train" else TEST_SETS[test_set])
        split_name = opts[f"{split}_split"] or split
        records = load_hub("math", hub_id, split_name, opts[f"{split}_hub_config"], opts["cache_dir"])
        where = f"{hub_id} {split_name} row"
    # Text only and small (<= 12.5K rows): read every row so a bad record fails before subsetting.
    rows = [_row(split, source, i, dict(r), fields, f"{where} {i}", instruction) for i, r in enumerate(records)]
    rows = [rows[i] for i in pick_indices(len(rows), num, seed, f"math/{source}/{split}")]
    return check_unique_ids("math", rows)
