"""Paper-scale task adapters (evochart, chartqa, math) on tiny local data: no network."""

from __future__ import annotations

import io
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from nsr.data import load_problems, read_problems, write_subset  # noqa: E402
from nsr.io import InputError  # noqa: E402
from nsr.rewards import score  # noqa: E402
from nsr.tasks import TASKS, load_task  # noqa: E402
from nsr.data import normalize_prompt  # noqa: E402
from nsr.tasks._common import CHART_INSTRUCTION  # noqa: E402
from nsr.tasks.math import INSTRUCTION, last_boxed  # noqa: E402


def png(i: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6 + i, 5), (20 * i % 256, 40, 90)).save(buf, format=fmt)
    return buf.getvalue()


CHART = [{"query": f"What is bar {i}?", "label": [str(10 * i), "other"], "image": png(i)} for i in range(8)]


@pytest.fixture(scope="module")
def chart_hub(tmp_path_factory):
    """A ChartQA-shaped DatasetDict (Image feature) saved with save_to_disk."""
    features = datasets.Features({"query": datasets.Value("string"), "image": datasets.Image(),
                                  "label": datasets.Sequence(datasets.Value("string"))})
    rows = {k: [r[k] for r in CHART] for k in ("query", "label")}
    rows["image"] = [{"bytes": r["image"], "path": None} for r in CHART]
    folder = tmp_path_factory.mktemp("hub") / "chartqa"
    data = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict({"train": data, "val": data.select(range(3))}).save_to_disk(str(folder))
    return folder


@pytest.fixture
def chart_files(tmp_path):
    """EvoChart-style local layout: JSON records naming images in a folder."""
    (tmp_path / "images").mkdir()
    records = []
    for i in range(5):
        (tmp_path / "images" / f"c{i}.png").write_bytes(png(i))
        records.append({"id": f"q{i}", "question": f"Value of {i}?", "answer": 1.5 * i, "image": f"c{i}.png"})
    (tmp_path / "train.json").write_text(json.dumps(records))
    # JSONL with a JPEG and images next to the file (the default image root)
    jpeg = png(7, "JPEG")
    (tmp_path / "c7.jpg").write_bytes(jpeg)
    (tmp_path / "test.jsonl").write_text(json.dumps({"question_id": 7, "query": "Max?", "label": "B",
                                                     "imgname": "c7.jpg"}) + "\n")
    return tmp_path, records, jpeg


def test_registered():
    assert {"evochart", "chartqa", "math"} <= set(TASKS)


def test_chartqa_hub_saved_folder(chart_hub):
    rows = load_task("chartqa", "train", None, 0, hub_id=str(chart_hub))
    assert [r["answer"] for r in rows] == [str(10 * i) for i in range(8)]  # list label -> first
    assert [r["image"] for r in rows] == [r["image"] for r in CHART]  # original bytes, no re-encode
    assert rows[3]["prompt"] == [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": f"What is bar 3?\n{CHART_INSTRUCTION}"}]}]
    assert len({r["problem_id"] for r in rows}) == 8
    test = load_task("chartqa", "test", None, 0, hub_id=str(chart_hub), test_split="val")
    assert [r["question"] for r in test] == ["What is bar 0?", "What is bar 1?", "What is bar 2?"]
    with pytest.raises(InputError, match="split 'test'"):
        load_task("chartqa", "test", None, 0, hub_id=str(chart_hub))
    with pytest.raises(InputError, match="question column"):
        load_task("chartqa", "train", None, 0, hub_id=str(chart_hub), question_field="nope")


def test_evochart_hub_via_load_dataset_with_field_mapping(tmp_path):
    """A local data-files folder goes through datasets.load_dataset, as a hub id does."""
    data = datasets.Dataset.from_dict(
        {"q": ["A?", "B?"], "a": ["x", "y"], "qid": ["k1", "k2"],
         "img": [{"bytes": png(1), "path": None}, {"bytes": png(2, "BMP"), "path": None}]},
        features=datasets.Features({"q": datasets.Value("string"), "a": datasets.Value("string"),
                                    "qid": datasets.Value("string"), "img": datasets.Image()}))
    (tmp_path / "repo").mkdir()
    data.to_parquet(str(tmp_path / "repo" / "train.parquet"))
    rows = load_task("evochart", "train", None, 0, hub_id=str(tmp_path / "repo"), question_field="q",
                     answer_field="a", image_field="img", id_field="qid", cache_dir=str(tmp_path / "cache"))
    assert [(r["problem_id"], r["answer"]) for r in rows] == [("evochart-k1", "x"), ("evochart-k2", "y")]
    assert rows[0]["image"] == png(1)
    assert Image.open(io.BytesIO(rows[1]["image"])).format == "PNG"  # BMP re-encoded as PNG
    with pytest.raises(InputError, match="cannot load dataset"):
        load_task("evochart", "train", None, 0, hub_id=str(tmp_path / "missing"), cache_dir=str(tmp_path / "cache"))


def test_evochart_local_json_and_jsonl(chart_files):
    root, records, jpeg = chart_files
    rows = load_task("evochart", "train", None, 0, train_path=str(root / "train.json"),
                     image_root=str(root / "images"))
    assert [r["problem_id"] for r in rows] == [f"evochart-q{i}" for i in range(5)]
    assert [r["answer"] for r in rows] == ["0", "1.5", "3", "4.5", "6"]
    assert rows[2]["image"] == (root / "images" / "c2.png").read_bytes()
    test = load_task("evochart", "test", None, 0, test_path=str(root / "test.jsonl"))
    assert test == [{"problem_id": "evochart-7", "answer": "B", "image": jpeg, "question": "Max?",
                     "prompt": [{"role": "user", "content": [{"type": "image"},
                                                             {"type": "text", "text": f"Max?\n{CHART_INSTRUCTION}"}]}]}]


def test_seeded_subsets(chart_files, chart_hub):
    root, _, _ = chart_files
    opts = {"train_path": str(root / "train.json"), "image_root": str(root / "images")}
    ids = lambda rows: [r["problem_id"] for r in rows]  # noqa: E731
    a, b = load_task("evochart", "train", 3, 7, **opts), load_task("evochart", "train", 3, 7, **opts)
    assert a == b and len(a) == 3
    assert ids(load_task("evochart", "train", 2, 7, **opts)) == ids(a)[:2]  # smaller subset is a prefix
    hub = [ids(load_task("chartqa", "train", 5, s, hub_id=str(chart_hub))) for s in (1, 1, 2)]
    assert hub[0] == hub[1] and hub[0] != hub[2] and len(set(hub[0])) == 5
    assert len(load_task("chartqa", "train", 100, 0, hub_id=str(chart_hub))) == 8  # capped at all rows


def test_chart_bad_input(chart_files):
    root, records, _ = chart_files
    opts = {"train_path": str(root / "train.json"), "image_root": str(root / "images")}
    (root / "images" / "c3.png").unlink()
    with pytest.raises(InputError, match=r"record 3: image file .*c3\.png does not exist"):
        load_task("evochart", "train", None, 0, **opts)
    bad = root / "bad.json"
    bad.write_text(json.dumps([{"question": "Q?", "image": "c0.png"}]))
    with pytest.raises(InputError, match=r"bad\.json record 0 has no answer field"):
        load_task("evochart", "train", None, 0, train_path=str(bad), image_root=str(root / "images"))
    (root / "broken.png").write_bytes(b"not an image")
    bad.write_text(json.dumps([{"question": "Q?", "answer": "1", "image": "broken.png"}]))
    with pytest.raises(InputError, match="record 0: not a readable image"):
        load_task("evochart", "train", None, 0, train_path=str(bad))
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        load_task("evochart", "train", None, 0, train_path=str(bad))
    with pytest.raises(InputError, match="unknown option.*'hubid'"):
        load_task("evochart", "train", None, 0, hubid="x")
    with pytest.raises(InputError, match="no data source.*hub_id"):
        load_task("evochart", "train", None, 0)
    with pytest.raises(InputError, match="option 'image_root'"):
        load_task("evochart", "train", None, 0, train_path=str(root / "train.json"), image_root=str(root / "nope"))
    with pytest.raises(InputError, match="unknown split 'warmstart'"):
        load_task("evochart", "warmstart", None, 0, **opts)


def test_parquet_round_trip(chart_files, tmp_path):
    root, _, _ = chart_files
    opts = {"train_path": str(root / "train.json"), "image_root": str(root / "images")}
    rows = load_task("evochart", "train", 4, 3, **opts)
    out = tmp_path / "data" / "train.parquet"
    written = write_subset("evochart", "train", 4, 3, out, **opts)
    back = read_problems(out)
    assert list(back["problem_id"]) == [r["problem_id"] for r in rows] == list(written["problem_id"])
    assert list(back["answer"]) == [r["answer"] for r in rows]
    assert list(back["image"]) == [r["image"] for r in rows]
    assert list(back["prompt"]) == [r["prompt"] for r in rows]  # read_problems normalises
    assert [normalize_prompt(p) for p in back["prompt"]] == [r["prompt"] for r in rows]
    # a parquet subset re-read through load_problems keeps the same rows
    assert list(load_problems(str(out), "train")["problem_id"]) == list(back["problem_id"])


MATH_TRAIN = [
    {"problem": "What is $1/2 + 0$?", "solution": "Clearly $\\boxed{\\frac{1}{2}}$.", "level": "Level 1"},
    {"problem": "Compute $2+2$.", "solution": "We get $\\boxed{4}$."},
    {"problem": "Solve $x^2=9$, $x>0$.", "solution": "First \\boxed{-3} fails; so $\\boxed{3}$."},
    {"problem": "Set?", "solution": "It is $\\boxed{\\{1,2\\}}$."},
]


def test_math_local_and_rewards_end_to_end(tmp_path):
    path = tmp_path / "math.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in MATH_TRAIN))
    rows = load_task("math", "train", None, 0, train_path=str(path))
    assert [r["answer"] for r in rows] == ["\\frac{1}{2}", "4", "3", "\\{1,2\\}"]
    assert rows[1]["prompt"] == [{"role": "user", "content": f"Compute $2+2$.\n{INSTRUCTION}"}]
    assert INSTRUCTION == "Please reason step by step, and put your final answer within \\boxed{}."
    assert "image" not in rows[0]
    assert score("... so the answer is \\boxed{\\frac{1}{2}}", rows[0]["answer"]) == 1.0
    assert score("Thus \\boxed{0.5}", rows[0]["answer"]) == 1.0
    assert score("Thus \\boxed{\\frac{1}{3}}", rows[0]["answer"]) == 0.0
    assert score("so $x=\\boxed{3}$", rows[2]["answer"]) == 1.0
    assert score("so $x=\\boxed{-3}$", rows[2]["answer"]) == 0.0
    sub = load_task("math", "train", 2, 5, train_path=str(path))
    assert sub == load_task("math", "train", 2, 5, train_path=str(path)) and len(sub) == 2


def test_math_hub_test_sets(tmp_path):
    math500 = tmp_path / "m500"
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({
        "problem": ["P1", "P2"], "solution": ["\\boxed{7}", "\\boxed{8}"], "answer": ["7", "\\sqrt{2}"],
        "unique_id": ["test/algebra/1.json", "test/geometry/2.json"]})}).save_to_disk(str(math500))
    frame = load_problems("math", "test", None, 0, test_hub_id=str(math500))
    assert list(frame["problem_id"]) == ["math500-test/algebra/1.json", "math500-test/geometry/2.json"]
    assert list(frame["answer"]) == ["7", "\\sqrt{2}"]  # answer field wins over the solution's box
    assert score("so \\boxed{\\sqrt 2}", frame["answer"][1]) == 1.0
    aime = tmp_path / "aime"
    datasets.Dataset.from_dict({"problem": ["A1", "A2", "A3"], "answer": [70, 588, 16],
                                "id": [0, 1, 2]}).save_to_disk(str(aime))
    rows = load_task("math", "test", None, 0, test_set="aime25", test_hub_id=str(aime))
    assert [(r["problem_id"], r["answer"], r["source"]) for r in rows] == [
        ("aime25-0", "70", "aime25"), ("aime25-1", "588", "aime25"), ("aime25-2", "16", "aime25")]
    amc = tmp_path / "amc"
    datasets.Dataset.from_dict({"question": ["Q1"], "answer": [27.0]}).save_to_disk(str(amc))
    rows = load_task("math", "test", None, 0, test_set="amc23", test_hub_id=str(amc))
    assert rows[0]["answer"] == "27" and rows[0]["prompt"][0]["content"].startswith("Q1\n")


def test_math_bad_input(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"problem": "P", "solution": "no box here"}]))
    with pytest.raises(InputError, match=r"m\.json record 0 has no answer field.*\\boxed"):
        load_task("math", "train", None, 0, train_path=str(path))
    path.write_text(json.dumps([{"text": "P", "answer": "1"}]))
    with pytest.raises(InputError, match="no question field"):
        load_task("math", "train", None, 0, train_path=str(path))
    with pytest.raises(InputError, match="option 'test_set'"):
        load_task("math", "test", None, 0, test_set="aime24")
    with pytest.raises(InputError, match="subset size"):
        load_task("math", "train", 0, 0, train_path=str(path), question_field="text")
    with pytest.raises(InputError, match="option 'path' must be a string"):
        load_task("math", "train", None, 0, path=3)


def test_last_boxed_balanced_braces():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{x^{2}}{3}} c") == "\\frac{x^{2}}{3}"
    assert last_boxed("\\fbox{5}") == "5" and last_boxed("$\\boxed 12$") == "12"
    assert last_boxed("\\boxed{open") is None and last_boxed("nothing") is None


def test_math_module_does_not_shadow_stdlib():
    import math

    import nsr.tasks.math as task_math

    assert math.isclose(math.sqrt(2) ** 2, 2) and task_math.__name__ == "nsr.tasks.math"


def test_chart_graded_credit_option(chart_files, tmp_path):
    root, records, _ = chart_files
    rows = load_task("evochart", "train", None, 0, path=str(root / "train.json"), image_root=str(root / "images"), credit="graded")
    assert {r["credit"] for r in rows} == {"graded"}
    assert score("3", rows[2]["answer"], rows[2]["credit"]) == 1.0  # gold 3.0
    assert score("2.25", rows[2]["answer"], rows[2]["credit"]) == 0.75
    assert "credit" not in load_task("evochart", "train", None, 0, path=str(root / "train.json"), image_root=str(root / "images"))[0]
    with pytest.raises(InputError, match="'credit'"):
        load_task("evochart", "train", None, 0, path=str(root / "train.json"), image_root=str(root / "images"), credit="lenient")
    # a problem file whose credit column is not a known credit stops before any work
    write_subset("evochart", "train", None, 0, tmp_path / "p.parquet", path=str(root / "train.json"), image_root=str(root / "images"), credit="graded")
    frame = read_problems(tmp_path / "p.parquet")
    frame.loc[1, "credit"] = "half"
    frame.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="column 'credit'"):
        read_problems(tmp_path / "bad.parquet")
