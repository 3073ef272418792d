"""nsr.plotting.comparison: Pass@k results loaded, the comparison figure, its markdown table, and
`nsr plot --results`."""

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from nsr import cli
from nsr.io import InputError
from nsr.plotting import comparison_figure, load_results, markdown_table

KS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def write_result(path, method, base_p1, with_seeds=False, test_set=None, num_problems=50):
    values = {str(k): min(1.0, base_p1 * (1 + np.log2(k)) / 2) for k in KS}
    result = {"method": method, "seed": 0, "n": 256, "num_problems": num_problems, "pass_at_k": values,
              "ci95": {k: [v - 0.02, v + 0.02] for k, v in values.items()}}
    if test_set is not None:
        result["test_set"] = test_set
    if with_seeds:
        result.update(seeds=[0, 1, 2], std={k: 0.01 for k in values})
    path.write_text(json.dumps(result))
    return values


def labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


@pytest.fixture
def results(tmp_path):
    paths, values = [], {}
    for method, p1 in [("base", 0.2), ("grpo", 0.3), ("nsr", 0.25), ("psr", 0.32)]:
        paths.append(tmp_path / f"{method}.json")
        values[method] = write_result(paths[-1], method, p1, with_seeds=method == "nsr")
    return paths, values


def test_comparison_figure_lines_styles_axis(results):
    paths, values = results
    fig = comparison_figure(load_results(paths))
    ax = fig.axes[0]
    lines = labelled_lines(ax)
    assert [line.get_label() for line in lines] == ["base", "grpo", "nsr", "psr"]
    assert [line.get_linestyle() for line in lines] == ["--", "-", "-", "-"]
    assert len(ax.collections) == 4  # one CI band per method
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["base", "grpo", "nsr", "psr"]
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
    assert list(ax.get_xticks()) == KS
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(k) for k in KS]
    assert len(fig.axes) == 1 and ax.get_title() == "test (50 problems)" and "Pass@k" in ax.get_ylabel()
    assert 0 <= ax.get_ylim()[0] < ax.get_ylim()[1] <= 1
    grpo = lines[1]
    assert list(grpo.get_xdata()) == KS
    assert list(grpo.get_ydata()) == pytest.approx([values["grpo"][str(k)] for k in KS])


def test_labels_override_method_and_must_match(results):
    paths, _ = results
    table = load_results(paths[:2], labels=["Base model", "GRPO"])
    assert list(dict.fromkeys(table["method"])) == ["Base model", "GRPO"]
    fig = comparison_figure(table, base_method="Base model")
    assert labelled_lines(fig.axes[0])[0].get_linestyle() == "--"
    with pytest.raises(InputError, match="--labels"):
        load_results(paths, labels=["a"])
    with pytest.raises(InputError, match="several files"):
        load_results([paths[0], paths[0]])


def test_labels_naming_the_methods_go_to_their_files_not_by_position(results):
    # the guide: `--results results_*.json` (alphabetical: grpo, nsr, psr) with labels in its own order
    paths, values = results
    table = load_results(paths[1:], labels=["GRPO", "PSR", "NSR"])
    at_one = table[table["k"] == 1].set_index("method")["pass_at_k"]
    assert at_one["PSR"] == pytest.approx(values["psr"]["1"]) and at_one["NSR"] == pytest.approx(values["nsr"]["1"])
    # labels that are not the methods' names keep their positions
    renamed = load_results(paths[1:], labels=["A", "B", "C"]).query("k == 1").set_index("method")["pass_at_k"]
    assert renamed["B"] == pytest.approx(values["nsr"]["1"])


def test_one_panel_per_test_set_in_file_order(tmp_path):
    paths, values = [], {}
    for test_set, problems in [("math500", 500), ("aime25", 30)]:
        for method, p1 in [("base", 0.2), ("nsr", 0.3)]:
            paths.append(tmp_path / f"{test_set}-{method}.json")
            values[test_set, method] = write_result(paths[-1], method, p1 if test_set == "math500" else p1 / 4,
                                                    test_set=test_set, num_problems=problems)
    table = load_results(paths)
    fig = comparison_figure(table)
    assert [ax.get_title() for ax in fig.axes] == ["math500 (500 problems)", "aime25 (30 problems)"]
    for ax, test_set in zip(fig.axes, ["math500", "aime25"]):
        lines = labelled_lines(ax)
        assert [line.get_label() for line in lines] == ["base", "nsr"]
        assert list(lines[1].get_ydata()) == pytest.approx([values[test_set, "nsr"][str(k)] for k in KS])
    # one legend for the figure; a method keeps its colour across panels
    assert fig.axes[0].get_legend() is not None and fig.axes[1].get_legend() is None
    assert [line.get_color() for line in labelled_lines(fig.axes[0])] == [
        line.get_color() for line in labelled_lines(fig.axes[1])]
    text = markdown_table(table)
    assert text.index("### math500 (500 problems)") < text.index("### aime25 (30 problems)")
    aime = text[text.index("### aime25"):]
    v = values["aime25", "nsr"]["1"]
    assert f"| nsr | {100 * v:.1f} [" in aime
    # the same method twice in one test set is ambiguous; across test sets it is not
    with pytest.raises(InputError, match="one test set"):
        load_results([paths[0], paths[0]])


@pytest.mark.parametrize("content, problem", [
    ("{", "unreadable"),
    ('{"method": "x"}', "pass_at_k"),
    ('{"method": "x", "pass_at_k": {"one": 0.5}}', "map k to numbers"),
    ('{"method": "x", "pass_at_k": {"1": 0.5}, "ci95": {"1": [0.1]}}', "map k to numbers"),
])
def test_bad_result_file(tmp_path, content, problem):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        load_results([path])
    assert str(path) in str(err.value) and problem in str(err.value)


def test_markdown_table(results):
    paths, values = results
    table = load_results(paths)
    text = markdown_table(table)
    lines = text.strip().splitlines()
    assert lines[:3] == ["### test (50 problems)", "", "| method | Pass@1 | Pass@8 | Pass@64 | Pass@256 |"]
    assert len(lines) == 4 + 4
    grpo = next(line for line in lines if line.startswith("| grpo |"))
    v = values["grpo"]["8"]
    assert f"{100 * v:.1f} [{100 * (v - 0.02):.1f}, {100 * (v + 0.02):.1f}]" in grpo
    assert "± 1.0" in next(line for line in lines if line.startswith("| nsr |"))
    # a k the results do not have is a dash, not a number
    short = markdown_table(table[table["k"] <= 8])
    assert short.strip().splitlines()[4].endswith("| – | – |")


def test_cli_writes_png_csv_md(results, tmp_path, capsys):
    paths, values = results
    out = tmp_path / "figs" / "comparison_pass_at_k.png"
    cli.main(["plot", "--results", *map(str, paths), "--output", str(out)])
    assert imread(out).shape[2] in (3, 4)
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert list(csv.columns[:6]) == ["test_set", "method", "k", "pass_at_k", "ci_low", "ci_high"]
    assert len(csv) == 4 * len(KS)
    row = csv[(csv["method"] == "psr") & (csv["k"] == 64)].iloc[0]
    assert row["pass_at_k"] == pytest.approx(values["psr"]["64"])
    assert csv.loc[csv["method"] == "nsr", "num_seeds"].eq(3).all()
    assert out.with_suffix(".md").read_text() == markdown_table(load_results(paths))
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "comparison_pass_at_k.csv", "comparison_pass_at_k.md", "comparison_pass_at_k.png"]
    assert "| psr |" in capsys.readouterr().out
