"""Smoke tests of the benchmark scripts: each `main()` runs at tiny sizes and returns
a well-formed result dict (the figures themselves are not checked: they are
measurements, not contracts)."""

import json
import math
import os
import sys

import pytest

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


def test_train_flops_are_counted_from_layer_shapes():
    import kgan

    g, d = kgan.networks.dcgan(8, 1, 4, base_filters=2)
    # G: Dense 4 -> 4*4*4 (256 MACs), Conv2DTranspose 4x4x4 -> 2, k4 (4*4*16*4*2 = 2048),
    # Conv2D 8x8x2 -> 1, k3 (8*8*9*2 = 1152). D: Conv2D 8x8x1 -> 4x4x4, k4 (4*4*16*4 = 1024),
    # Dense 64 -> 1 (64).
    assert train_throughput.forward_macs(g) == 256 + 2048 + 1152
    assert train_throughput.forward_macs(d) == 1024 + 64
    assert train_throughput.train_flops_per_image(g, d) == 2 * (4 * 3456 + 9 * 1088)


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown variant"):
        train_throughput.parse_variant("float64")


def test_mixture_quality_quick():
    result = mixture_quality.main(["--quick", "--mixtures", "grid"])
    summary = result["mixtures"]["grid"]
    assert summary["total_modes"] == 25 and len(summary["runs"]) == 2
    assert 0 <= summary["modes"] <= 25 and 0 <= summary["high_quality_pct"] <= 100


def test_mixture_score_counts_modes_and_quality():
    import numpy as np

    grid = mixture_quality.grid()
    samples = np.concatenate([grid.means[:3], grid.means[:1] + 0.1, [[1.0, 1.0]]])
    assert mixture_quality.score(samples, grid) == {"modes": 3, "high_quality_pct": 80.0}


def test_digits_quality_quick():
    result = digits_quality.main(["--quick"])
    generated, floor = result["rows"]
    assert floor["classes_covered"] == 10
    for row in (generated, floor):
        assert math.isfinite(row["frechet_distance"]) and 0 <= row["precision"] <= 1
        assert len(row["class_shares"]) == 10


def test_serving_latency_quick():
    result = serving_latency.main(["--quick"])
    assert {row["batch"] for row in result["rows"]} == {1, 2}
    assert len(result["rows"]) == 6
    assert all(0 < row["p50_ms"] <= row["p99_ms"] for row in result["rows"])
