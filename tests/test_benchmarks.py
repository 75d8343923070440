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
import photo_pipeline  # noqa: E402
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


def _shadow_trainer(flags, shadow_ema, steps):
    config = digits_quality.train_config(flags, quick=True)
    (train_x, train_y), _ = digits_quality.split(0.2, seed=0)
    trainer = digits_quality.Trainer(config, train_x, train_y, shadow_ema=shadow_ema)
    trainer.train(steps)
    return trainer


def test_a_shadow_ema_of_the_runs_own_half_life_holds_the_ema_generators_weights():
    # Half-life 64 images (beta 0.71 per step of 32), capped by the ramp-up at 16, 32, 48
    # images in the first 3 steps: each step's beta depends on the step, so the shadow
    # agrees only if it counts steps as the graph does; 256 images parts from it at step 5.
    trainer = _shadow_trainer(["--ema-kimg", "0.064", "--ema-rampup", "0.5"],
                              [0.064, 0.256], steps=6)
    own, longer = (trainer.shadow.weights[k] for k in (0.064, 0.256))
    ema = trainer.gan.ema_generator.get_weights()
    raw = trainer.gan.generator.get_weights()
    for shadow, graph in zip(own, ema, strict=True):
        np.testing.assert_allclose(shadow, graph, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(longer, own, strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(own, raw, strict=True))


def test_shadow_emas_are_scored_as_rows_of_the_same_run(tmp_path):
    # The quick digits run (2 steps of 32 images, ramp-up 0.05): 5 and 9 kimg are both
    # capped at 3.2 images so far, so 9 is 5's twin and is not scored again.
    result = digits_quality.main(["--quick", "--shadow-ema", "5,9", "--grids", str(tmp_path)])
    run, five, nine = result["rows"]
    assert (five["recipe"], five["shadow_ema_kimg"], five["shadow_of"]) == (
        "cli, EMA 5 kimg (same run)", 5.0, "cli")
    assert five["steps"] == nine["steps"] == run["steps"] == 2
    assert nine["same_weights_as_kimg"] == 5.0 and "same_weights_as_kimg" not in five
    assert nine["frechet_distance"] == five["frechet_distance"]
    assert "without_ema" in run and "without_ema" not in five
    assert os.path.exists(five["grid"]) and five["grid"] != run["grid"]
    assert nine["grid"] == five["grid"]  # the same weights: one grid
    assert "| cli, EMA 9 kimg (same run) |" in result["markdown"]
    with pytest.raises(SystemExit):  # argparse: half-lives must be positive and distinct
        digits_quality.parse_args(["--shadow-ema", "5,5"])


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


# One fresh process runs every JAX-backend check below (Keras picks its backend once per
# process, and this one runs on TensorFlow): a --quick benchmark run; a seeded tiny DCGAN
# trained 97 steps on one fixed batch per policy; XLA's FLOP counts.
JAX_CHECKS = """
import json
import jax, keras, numpy as np
import network_throughput_jax as b

out = {"quick": b.main(["--quick", "--configs", "dcgan:8:4", "--policies", "float32",
                         "--no-step-flops", "--out", "gpu.json"])}
real = jax.random.uniform(jax.random.key(1), (8, 8, 8, 3), minval=-1.0, maxval=1.0)
moved = lambda before, after: max(float(np.abs(x - np.array(y, np.float32)).max())
                                  for x, y in zip(before, after))
out["training"] = {}
for policy in b.POLICIES:
    keras.utils.set_random_seed(0)
    g, d = b.build_networks("dcgan", 8, policy, {"base_filters": 4})
    trainer = b.Trainer(g, d, policy, seed=0)
    g0, d0 = [np.array(v) for v in trainer.state[0]], [np.array(v) for v in trainer.state[2]]
    first = float(trainer.run(real, 1)[0])
    trainer.run(real, 95)
    last = float(trainer.run(real, 1)[0])
    out["training"][policy] = [first, last, moved(g0, trainer.state[0]),
                               moved(d0, trainer.state[2])]
import grouped_conv_jax
out["grouped"] = grouped_conv_jax.main(["--groups", "1,4", "--channels", "8", "--size", "4",
                                        "--batch", "2", "--seconds", "0.01"])
g, d = b.build_networks("dcgan", 8, "float32", {"base_filters": 2})
out["tiny_d_flops"] = b.forward_flops(d)
g, d = b.build_networks("resnet", 16, "float32", {"g_width": 4, "d_width": 4})
out["resnet_flops"] = [b.forward_flops(g), b.forward_flops(d)]  # builds on JAX (~10 s)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def jax_checks(tmp_path_factory):
    import subprocess

    cwd = tmp_path_factory.mktemp("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": BENCHMARKS,  # quick compiles
           "XLA_FLAGS": "--xla_backend_optimization_level=0 "
                        "--xla_llvm_disable_expensive_passes=true"}
    done = subprocess.run([sys.executable, "-c", JAX_CHECKS], env=env, cwd=cwd, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), cwd


def test_network_throughput_on_the_jax_backend_quick(jax_checks):
    checks, cwd = jax_checks
    result = checks["quick"]
    assert result["machine"]["backend"] == "jax" and result["machine"]["jax"]
    # one row; the training test below covers every policy
    assert [(r["network"], r["policy"]) for r in result["rows"]] == [("dcgan", "float32")]
    for row in result["rows"]:
        assert row["images_per_s"] > 0 and row["model_gflops_per_image"] > 0
        assert math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"])
        assert row["mfu"] is None  # a CPU: no peak to divide by
        # kgan.GAN.fit timed beside the hand-written step, in the same run
        assert row["kgan_images_per_s"] > 0 and row["kgan_ratio"] > 0
        assert len(row["kgan_seconds"]) == len(row["seconds"])
    assert json.loads((cwd / "gpu.json").read_text())["rows"] == result["rows"]


def test_jax_train_step_trains_both_networks_in_every_policy(jax_checks):
    # D learns to tell the fixed batch from G's fakes: its loss falls from ~log 4 = 1.386
    # by well over 0.1 (measured 1.35 -> 1.16 in all three policies); both networks'
    # weights move, so the float16 step's loss scaling does not skip every update.
    training = jax_checks[0]["training"]
    assert sorted(training) == ["float32", "mixed_bfloat16", "mixed_float16"]
    for policy, (first, last, g_moved, d_moved) in training.items():
        assert abs(first - 1.386) < 0.1, (policy, first)
        assert last < first - 0.1, (policy, first, last)
        assert g_moved > 1e-3 and d_moved > 1e-3, policy


def test_jax_flop_count_leaves_out_padding_taps(jax_checks):
    # Tiny DCGAN D (base_filters 2, 8 px, RGB): Conv2D 8x8x3 -> 4x4x4, k4, stride 2, 'same'
    # (pad 1 and 2): 14 of the 16 taps per axis land on the image, so 14 * 14 * 3 * 4 = 2352
    # multiply-adds, not 4 * 4 * 16 * 3 * 4 = 3072; plus Dense 64 -> 1: 64. XLA counts
    # 2 FLOPs per multiply-add plus the elementwise ops (bias, leaky ReLU): a few % more.
    checks = jax_checks[0]
    assert 2 * (2352 + 64) <= checks["tiny_d_flops"] <= 1.1 * 2 * (2352 + 64)
    assert all(flops > 0 for flops in checks["resnet_flops"])  # the other Keras-only family


def test_grouped_convolution_timing_on_jax_quick(jax_checks):
    rows = jax_checks[0]["grouped"]["rows"]
    assert [row["groups"] for row in rows] == [1, 4]
    assert all(row["forward_ms"] > 0 and row["gradient_ms"] > 0 for row in rows)
    # 4 groups do a quarter of the dense convolution's multiply-adds
    assert rows[0]["multiply_adds"] == 4 * rows[1]["multiply_adds"] == 2 * 16 * 9 * 64


def test_photo_pipeline_quick():
    result = photo_pipeline.measure(4, 16, 1, size=(640, 480))
    assert set(result["images_per_second"]) == {"full decode", "DCT scaled"}
    assert all(rate > 0 for rate in result["images_per_second"].values())
    assert result["mean_abs_difference_grey_levels"] < 4
