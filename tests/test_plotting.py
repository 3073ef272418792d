import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from nsr import cli
from nsr.io import InputError
from nsr.plotting import comparison_figure, dynamics_figure, load_results, load_train_logs, markdown_table

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


def write_log(path, steps, reward_slope, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = np.arange(1, steps + 1)
    pd.DataFrame({
        "step": step, "loss": rng.normal(size=steps), "reward_mean": reward_slope * step / steps,
        "frac_correct": reward_slope * step / steps, "kept_samples": 8,
        "entropy": 1 - 0.5 * step / steps + rng.normal(0, 0.05, steps), "learning_rate": 1e-4,
        "seconds": 0.1 * step,
    }).to_csv(path, index=False)


def test_dynamics_figure_panels_and_lines(tmp_path):
    paths = []
    for method, slope in [("grpo", 0.8), ("nsr", 0.4)]:
        for seed in (0, 1):
            paths.append(tmp_path / "models" / method / f"seed{seed}" / "train_log.csv")
            write_log(paths[-1], 40, slope, seed)
    logs = load_train_logs(paths)
    assert set(logs["method"]) == {"grpo", "nsr"}  # from results/models/{method}/seed{seed}/
    fig = dynamics_figure(logs, window=5)
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["reward (mean)", "fraction correct", "token entropy"]
    for ax in fig.axes:
        assert [line.get_label() for line in labelled_lines(ax)] == ["grpo", "nsr"]
        faint = [line for line in ax.get_lines() if line.get_alpha() == 0.25]
        assert len(faint) == 2  # raw values, one per method
    # the smoothed reward line is the rolling mean of the seed-mean (both seeds equal here)
    reward = labelled_lines(fig.axes[0])[0]
    raw = 0.8 * np.arange(1, 41) / 40
    expected = pd.Series(raw).rolling(5, min_periods=1).mean().to_numpy()
    assert reward.get_ydata() == pytest.approx(expected)
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend for the figure
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["grpo", "nsr"]
    # a method has the same colour in both figures
    table = pd.DataFrame({"test_set": "test", "method": ["nsr", "grpo"], "k": [1, 1], "pass_at_k": [0.1, 0.2],
                          "ci_low": np.nan, "ci_high": np.nan, "std": np.nan, "num_problems": 5})
    colours = {line.get_label(): line.get_color() for line in labelled_lines(comparison_figure(table).axes[0])}
    assert colours == {line.get_label(): line.get_color() for line in labelled_lines(fig.axes[2])}


def test_train_log_errors_and_cli(tmp_path, capsys):
    good = tmp_path / "psr" / "seed0" / "train_log.csv"
    write_log(good, 10, 0.5, 0)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"step": [1], "reward_mean": [0.1]}).to_csv(bad, index=False)
    with pytest.raises(InputError) as err:
        load_train_logs([bad])
    assert str(bad) in str(err.value) and "entropy" in str(err.value)
    with pytest.raises(InputError, match="--labels-train"):
        load_train_logs([good], labels=["a", "b"])
    out = tmp_path / "curves.png"
    cli.main(["plot", "--train-logs", str(good), "--labels-train", "PSR", "--dynamics-output", str(out)])
    assert imread(out).ndim == 3
    with pytest.raises(SystemExit):
        cli.main(["plot", "--train-logs", str(good)])
    assert "--dynamics-output" in capsys.readouterr().err


def test_dynamics_figure_adds_held_out_panels_from_the_base(tmp_path):
    """A second row: held-out Pass@1, Pass@k (k from eval_k), malformed, entropy, greedy accuracy; per
    method the mean over seeds at each evaluated step with a std band, and the shared base at step 0."""
    paths = []
    for method, slope in [("psr", 0.8), ("nsr", 0.4)]:
        for seed in (0, 1):
            path = tmp_path / "models" / method / f"seed{seed}" / "train_log.csv"
            write_log(path, 20, slope, seed)
            log = pd.read_csv(path)
            base = pd.DataFrame({"step": [0], "seconds": [0.0]})  # step 0: the evaluation only
            log = pd.concat([base, log], ignore_index=True)
            evaluated = log["step"] % 10 == 0
            spread = 0.1 * seed * (log["step"] > 0)  # seeds differ after training, not at the base
            log["eval_entropy"] = np.where(evaluated, 1.0 - slope * log["step"] / 20 + spread, np.nan)
            log["eval_accuracy"] = np.where(evaluated, slope, np.nan)
            log["eval_pass_at_1"] = np.where(evaluated, 0.2 + slope * log["step"] / 100, np.nan)
            log["eval_pass_at_k"] = np.where(evaluated, 0.9 - slope * log["step"] / 100, np.nan)
            log["eval_k"] = np.where(evaluated, 32, np.nan)
            log["eval_malformed"] = np.where(evaluated, 0.01, np.nan)
            log.to_csv(path, index=False)
            paths.append(path)
    fig = dynamics_figure(load_train_logs(paths), window=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["reward (mean)", "fraction correct", "token entropy", "held-out Pass@1", "held-out Pass@32",
                      "held-out malformed share", "held-out token entropy", "held-out greedy accuracy"]
    entropy = fig.axes[6]
    lines = {line.get_label(): line for line in labelled_lines(entropy)}
    assert list(lines) == ["psr", "nsr", "base (step 0)"]
    assert list(lines["nsr"].get_xdata()) == [0, 10, 20]  # only evaluated steps, from the base on
    # mean over the two seeds: 1 - 0.4 * step / 20 + 0.05 after step 0
    assert lines["nsr"].get_ydata() == pytest.approx([1.0, 0.85, 0.65])
    assert list(lines["base (step 0)"].get_xdata()) == [0] and lines["base (step 0)"].get_ydata() == pytest.approx([1.0])
    assert len(entropy.collections) == 2  # a std band per method
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["psr", "nsr", "base (step 0)"]
    # the training panels skip step 0 (no update there): their first point is step 1
    reward = labelled_lines(fig.axes[0])[0]
    assert np.isnan(reward.get_ydata()[0]) or reward.get_xdata()[0] == 1
