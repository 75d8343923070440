"""Smoke tests of the benchmark scripts: each `main()` runs at tiny sizes and returns
a well-formed result dict (the figures themselves are not checked: they are
measurements, not contracts)."""

import json
import math
import os
import sys

import numpy as np
import pytest
from PIL import Image

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")
sys.path.insert(0, BENCHMARKS)

import digits_quality  # noqa: E402
import mixture_quality  # noqa: E402
import serving_latency  # noqa: E402
import train_throughput  # noqa: E402


def _check_machine(result):
    assert result["machine"]["cpu_cores"] >= 1
    assert result["machine"]["tensorflow"]


def test_train_throughput_quick(tmp_path):
    out = tmp_path / "train.json"
    result = train_throughput.main(["--quick", "--variants", "float32", "--out", str(out)])
    _check_machine(result)
    (row,) = result["rows"]
    assert row["variant"] == "float32"
    assert row["images_per_s"] > 0 and row["reference_images_per_s"] > 0
    assert row["ratio_vs_reference"] > 0 and row["model_gflops_per_image"] > 0
    assert json.loads(out.read_text())["rows"][0]["variant"] == "float32"


def test_train_flops_are_counted_by_the_graph_profiler():
    import kgan

    g, d = kgan.networks.dcgan(8, 1, 4, base_filters=2)
    # Multiply-accumulates by hand: G: Dense 4 -> 4*4*4 (256), Conv2DTranspose 4x4x4 -> 2,
    # k4 (4*4*16*4*2 = 2048), Conv2D 8x8x2 -> 1, k3 (8*8*9*2 = 1152). D: Conv2D 8x8x1 ->
    # 4x4x4, k4 (4*4*16*4 = 1024), Dense 64 -> 1 (64). The profiler counts 2 FLOPs per MAC
    # plus the elementwise ops (biases, activations, batch norm): a few % more.
    g_flops, d_flops = train_throughput.forward_flops(g), train_throughput.forward_flops(d)
    assert 2 * 3456 <= g_flops <= 1.25 * 2 * 3456
    assert 2 * 1088 <= d_flops <= 1.25 * 2 * 1088
    assert train_throughput.train_flops_per_image(g, d) == 4 * g_flops + 9 * d_flops


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown variant"):
        train_throughput.parse_variant("float64")


def test_mixture_quality_quick():
    result = mixture_quality.main(["--quick", "--mixtures", "grid"])
    summary = result["mixtures"]["grid"]
    assert summary["total_modes"] == 25 and len(summary["runs"]) == 2
    assert 0 <= summary["modes"] <= 25 and 0 <= summary["high_quality_pct"] <= 100
    assert result["recipe_name"] == "new"
    assert result["recipe"]["loss"] == mixture_quality.RECIPES["new"].loss
    # The old recipe stays selectable, and flags override single fields of either.
    old = mixture_quality.recipe_from(mixture_quality.parse_args(["--recipe", "old"]))
    assert old == mixture_quality.RECIPES["old"] and old.loss == "non_saturating"
    tuned = mixture_quality.recipe_from(mixture_quality.parse_args(
        ["--r2-gamma", "0.5", "--gamma-end", "none", "--hidden", "8,8", "--ema-decay", "0"]))
    assert (tuned.r2_gamma, tuned.gamma_end, tuned.hidden, tuned.ema_decay) == (
        0.5, None, (8, 8), None)


def test_mixture_score_counts_modes_and_quality():
    import numpy as np

    grid = mixture_quality.grid()
    samples = np.concatenate([grid.means[:3], grid.means[:1] + 0.1, [[1.0, 1.0]]])
    assert mixture_quality.score(samples, grid) == {"modes": 3, "high_quality_pct": 80.0}


def test_digits_quality_quick(tmp_path):
    result = digits_quality.main(["--quick", "--set", "loss=hinge", "--ema-decay", "0.9",
                                  "--steps-per-execution", "2", "--grids", str(tmp_path)])
    (row,) = result["rows"]
    grid = np.asarray(Image.open(row["grid"]))
    assert row["grid"].endswith("cli_1ep.png") and grid.shape[0] == grid.shape[1] > 100
    floor = result["floor"]
    assert row["config"]["loss"] == "hinge" and row["config"]["ema_decay"] == 0.9
    assert row["steps"] == 2 and row["budget_minutes"] is None
    assert floor["classes_covered"] == 10 and floor["recognised"] > 0.5
    for scores in (row, floor):
        assert math.isfinite(scores["frechet_distance"]) and 0 <= scores["precision"] <= 1
        assert 0 <= scores["recognised"] <= 1 and len(scores["class_shares"]) == 10
    assert row["recognised_ratio"] == pytest.approx(row["recognised"] / floor["recognised"],
                                                    abs=1e-3)
    assert result["classifiers"]["recogniser_held_out_accuracy"] > 0.95
    assert "| real training split (floor) |" in result["markdown"]


@pytest.mark.slow  # heavy: run with -m slow
def test_digits_quality_table_quick(tmp_path, capsys):
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps([
        {"name": "small", "flags": ["--network-args", "base_filters=4"]},
        {"name": "absent", "flags": ["--network", "no_such_family"]},
    ]))
    out = tmp_path / "table.json"
    result = digits_quality.main(["--quick", "--table", "--recipes", str(recipes),
                                  "--minutes", "0.02,0.04", "--out", str(out)])
    assert "skipping recipe absent" in capsys.readouterr().out
    first, second = result["rows"]
    assert (first["recipe"], first["budget_minutes"], second["budget_minutes"]) == (
        "small", 0.02, 0.04)
    # One run scored at each budget: steps never go back; the clock ran past each budget
    # (the first step alone, tracing included, may pass both on a busy machine).
    assert 0 < first["steps"] <= second["steps"]
    assert first["train_seconds"] >= 0.02 * 60 and second["train_seconds"] >= 0.04 * 60
    assert json.loads(out.read_text())["rows"][1]["steps"] == second["steps"]


def test_digits_set_flags_and_bad_input():
    assert digits_quality.set_flags(["r1_gamma=0.1", "conditional=false"]) == [
        "--r1-gamma", "0.1", "--no-conditional"]
    with pytest.raises(ValueError, match="TrainConfig field"):
        digits_quality.set_flags(["r1gamma=0.1"])
    with pytest.raises(ValueError, match="digits data set"):
        digits_quality.train_config(["--dataset", "mnist"])


def test_digit_recogniser_accepts_digits_and_rejects_noise():
    import numpy as np
    from digit_recognition import Recogniser, couple, to_digit_grid

    (train_x, train_y), (test_x, test_y) = digits_quality.split(0.2, seed=0)
    recogniser = Recogniser(train_x, train_y, threshold=0.9)
    assert recogniser.accuracy(test_x, test_y) > 0.95
    real = recogniser.rate(digits_quality.prepared(test_x, 32, 1), test_y)
    assert real["recognised"] > 0.7 and real["correct"] > 0.95
    noise = np.random.default_rng(0).uniform(-1, 1, (200, 32, 32, 1))
    assert recogniser.rate(noise)["recognised"] < 0.05
    # Block-constant 32 px images map back to their 8x8 digits exactly.
    blocks = np.kron(train_x[:3], np.ones((4, 4)))[..., None] * 2 - 1
    np.testing.assert_allclose(to_digit_grid(blocks), train_x[:3].reshape(3, -1) * 16,
                               atol=1e-9)
    # Consistent pairwise probabilities r_ij = p_i / (p_i + p_j) couple back to p.
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    pairwise = p[:, :, None] / (p[:, :, None] + p[:, None, :])
    np.testing.assert_allclose(couple(pairwise), p, atol=1e-9)


def test_serving_latency_quick():
    result = serving_latency.main(["--quick"])
    assert {row["batch"] for row in result["rows"]} == {1, 2}
    assert len(result["rows"]) == 6
    assert all(0 < row["p50_ms"] <= row["p99_ms"] for row in result["rows"])
