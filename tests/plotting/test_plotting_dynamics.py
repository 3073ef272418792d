"""nsr.plotting.dynamics: train logs loaded, the training-dynamics figure (with held-out panels), and
`nsr plot --train-logs`."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from nsr import cli
from nsr.io import InputError
from nsr.plotting import comparison_figure, dynamics_figure, load_train_logs


def labelled_lines(ax):
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


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


def test_group_filter_panels_show_the_kept_shares_and_older_logs_still_plot(tmp_path):
    """Logs with group_filter's columns add two training panels: groups_kept / groups_generated and
    kept_positive_share per method; a log written before the columns existed is drawn in the other panels."""
    filtered = tmp_path / "models" / "nsr-unsolved" / "seed0" / "train_log.csv"
    older = tmp_path / "models" / "grpo" / "seed0" / "train_log.csv"
    write_log(filtered, 10, 0.4, 0)
    write_log(older, 10, 0.8, 1)
    log = pd.read_csv(filtered)
    log["groups_generated"] = [16, 32, 16, 48, 16, 16, 32, 16, 16, 16]
    log["groups_kept"] = [4, 8, 8, 12, 16, 2, 16, 16, 0, 8]
    log["kept_positive_share"] = [0.0] * 8 + [np.nan, 0.0]  # no kept group at step 9: no share
    log.to_csv(filtered, index=False)
    fig = dynamics_figure(load_train_logs([filtered, older]), window=1)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["reward (mean)", "fraction correct", "token entropy", "kept share of groups",
                      "positive share of kept samples"]
    kept = {line.get_label(): line for line in labelled_lines(fig.axes[3])}
    assert kept["nsr-unsolved"].get_ydata() == pytest.approx(log["groups_kept"] / log["groups_generated"])
    assert list(labelled_lines(fig.axes[0])[1].get_ydata()) == pytest.approx(0.8 * np.arange(1, 11) / 10)  # grpo
    share = {line.get_label(): line for line in labelled_lines(fig.axes[4])}
    assert list(share["nsr-unsolved"].get_ydata()[:8]) == [0.0] * 8
