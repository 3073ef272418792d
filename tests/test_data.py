"""Problem subsets: a test set never shares a problem with the training set."""

import pandas as pd
import pytest

from nsr import cli
from nsr.data import read_problems, write_subset
from nsr.io import InputError


@pytest.fixture
def pool(tmp_path):
    path = tmp_path / "pool.parquet"
    pd.DataFrame({"problem_id": [f"p{i:02d}" for i in range(30)], "prompt": [f"q{i}" for i in range(30)],
                  "answer": [str(i) for i in range(30)]}).to_parquet(path)
    return path


def test_parquet_pool_test_set_leaves_out_training_problems(pool, tmp_path):
    train = write_subset(str(pool), "train", 20, 7, tmp_path / "train.parquet")
    test = write_subset(str(pool), "test", 10, 7, tmp_path / "test.parquet", exclude=(tmp_path / "train.parquet",))
    assert set(train["problem_id"]).isdisjoint(test["problem_id"])
    assert len(set(train["problem_id"]) | set(test["problem_id"])) == 30
    # without the exclusion the same seed draws the test set from the training problems
    overlapping = write_subset(str(pool), "test", 10, 7, tmp_path / "t2.parquet")
    assert set(overlapping["problem_id"]) <= set(train["problem_id"])
    with pytest.raises(InputError, match="11 problems asked for, only 10 available after leaving out 20"):
        write_subset(str(pool), "test", 11, 7, tmp_path / "t3.parquet", exclude=(tmp_path / "train.parquet",))
    assert not (tmp_path / "t3.parquet").exists()


def test_task_overlap_is_an_error(tmp_path):
    train = write_subset("synthchart", "train", 50, 3, tmp_path / "train.parquet")
    test = write_subset("synthchart", "test", 20, 3, tmp_path / "test.parquet", exclude=(tmp_path / "train.parquet",))
    assert set(train["problem_id"]).isdisjoint(test["problem_id"])  # disjoint by construction
    with pytest.raises(InputError, match="must not be a training problem"):
        write_subset("synthchart", "test", 20, 3, tmp_path / "again.parquet", exclude=(tmp_path / "test.parquet",))


def test_cli_exclude(pool, tmp_path, capsys):
    cli.main(["subset", "--dataset-name", str(pool), "--split", "train", "--subset-size", "25",
              "--output", str(tmp_path / "train.parquet")])
    cli.main(["subset", "--dataset-name", str(pool), "--split", "test", "--exclude", str(tmp_path / "train.parquet"),
              "--output", str(tmp_path / "test.parquet")])
    test = read_problems(tmp_path / "test.parquet")
    assert len(test) == 5  # no size: every problem not in training
    assert set(test["problem_id"]).isdisjoint(read_problems(tmp_path / "train.parquet")["problem_id"])
    with pytest.raises(SystemExit):
        cli.main(["subset", "--dataset-name", str(pool), "--split", "test", "--exclude", str(tmp_path / "nope.parquet"),
                  "--output", str(tmp_path / "x.parquet")])
    assert "nope.parquet does not exist" in capsys.readouterr().err
