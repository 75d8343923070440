"""Quality metrics on synthetic activations: references, sanity figures, streaming."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from kgan.evaluation import metrics, stats


def _gaussians(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)), rng.standard_normal((n, dim)) + shift


def _direct_fid(a, b):
    """FID written out from the definition, the way the TTUR reference computes it."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)


def test_fid_of_a_set_with_itself_is_zero():
    a = np.random.default_rng(0).standard_normal((200, 16))
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_matches_direct_scipy_computation():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 20))
    b = rng.standard_normal((250, 20)) @ rng.uniform(0.5, 1.5, (20, 20)) / 4 + 0.3
    assert metrics.fid(a, b) == pytest.approx(_direct_fid(a, b), rel=1e-6)
    assert metrics.fid(a, b) > 1.0


def test_frechet_distance_of_known_gaussians():
    # N(0, I) vs N(m, 4I) in D dims: |m|^2 + D (1 + 4 - 2 * 2) = |m|^2 + D
    mean = np.array([1.0, 2.0, 0.0])
    assert metrics.frechet_distance(np.zeros(3), np.eye(3), mean, 4 * np.eye(3)) == (
        pytest.approx(5.0 + 3.0)
    )


@pytest.mark.parametrize(("m1", "s1", "m2", "s2", "expected"), [
    (1.0, 4.0, 3.0, 9.0, 4.0 + 4.0 + 9.0 - 2 * 6.0),  # 5
    (-1.0, 0.25, 0.5, 1.0, 2.25 + 0.25 + 1.0 - 2 * 0.5),  # 2.5
    (2.0, 3.0, 2.0, 3.0, 0.0),
])
def test_frechet_distance_of_1d_gaussians_by_hand(m1, s1, m2, s2, expected):
    """1-D: FD = (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2), with s the variances."""
    assert metrics.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, abs=1e-9)


def _sqrtm_without_disp(monkeypatch):
    """scipy.linalg.sqrtm as SciPy 1.18 has it: no `disp` (nor any other keyword)."""
    original, calls = scipy.linalg.sqrtm, []

    def sqrtm(matrix, **kwargs):
        if kwargs:
            raise TypeError(f"sqrtm() got unexpected keyword arguments {sorted(kwargs)}")
        calls.append(matrix)
        return original(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm)
    return calls


def test_fid_works_on_a_scipy_without_disp(monkeypatch):
    calls = _sqrtm_without_disp(monkeypatch)
    assert metrics.frechet_distance(1.0, 4.0, 3.0, 9.0) == pytest.approx(5.0)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 12)), rng.standard_normal((250, 12)) * 1.5 + 0.3
    assert metrics.fid(a, b) == pytest.approx(_direct_fid(a, b), rel=1e-6)
    singular = metrics.fid(*_gaussians(5, 50, seed=2))
    assert np.isfinite(singular) and singular > 0
    assert len(calls) >= 3


def test_fid_raises_no_scipy_deprecation_warning():
    a, b = _gaussians(100, 8, seed=7, shift=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # SciPy 1.16+: `disp` deprecated
        metrics.fid(a, b)


def test_non_finite_square_root_is_retried_with_the_eps_offset(monkeypatch, capsys):
    """Old SciPy prints a line and returns NaN when sqrtm fails; kgan retries with
    eps * I added to both covariances and keeps stdout clean (kgan-evaluate --json)."""
    original, calls = scipy.linalg.sqrtm, []

    def failing_once(matrix):
        calls.append(matrix)
        if len(calls) == 1:
            print("Failed to find a square root.")
            return np.full_like(matrix, np.nan)
        return original(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", failing_once)
    # 1-D with eps = 1: (1 - 3)^2 + 4 + 9 - 2 sqrt((4 + 1)(9 + 1))
    value = metrics.frechet_distance(1.0, 4.0, 3.0, 9.0, eps=1.0)
    assert value == pytest.approx(4 + 13 - 2 * np.sqrt(50.0))
    assert len(calls) == 2 and calls[1][0, 0] == pytest.approx(50.0)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda matrix: np.full_like(matrix, np.inf))
    with pytest.raises(ValueError, match="no finite square root, even with eps"):
        metrics.frechet_distance(1.0, 4.0, 3.0, 9.0)


def test_non_finite_features_are_an_error():
    with pytest.raises(ValueError, match="NaN or inf"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))


def test_fid_handles_singular_covariances():
    # 5 samples in 50 dims: both covariances are rank-deficient.
    a, b = _gaussians(5, 50, seed=2)
    value = metrics.fid(a, b)
    assert np.isfinite(value) and value > 0


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
    a, b = _gaussians(500, 32, seed=3)
    same, same_std = metrics.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
    shifted, _ = metrics.kernel_inception_distance(a, b + 1.0, num_subsets=20, subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.5 and shifted > 50 * (abs(same) + same_std)


def test_kid_matches_unbiased_mmd_formula_on_one_subset():
    a, b = _gaussians(30, 4, seed=4)
    kernel = lambda x, y: (x @ y.T / 4 + 1) ** 3  # noqa: E731
    m = 30
    k_bb, k_aa, k_ba = kernel(b, b), kernel(a, a), kernel(b, a)
    expected = ((k_bb.sum() - np.trace(k_bb)) + (k_aa.sum() - np.trace(k_aa))) / (m * (m - 1))
    expected -= 2 * k_ba.mean()
    # A full-size subset is a permutation of both sets, which the estimator ignores.
    mean, std = metrics.kernel_inception_distance(a, b, num_subsets=3, subset_size=m)
    assert mean == pytest.approx(expected) and std == pytest.approx(0.0, abs=1e-9)


def test_kid_std_measures_a_spread_below_1000_samples():
    """By default a subset is 1000 rows, or half the smaller set: subsets of the whole set
    would all be one set, with std 0 (what 500-sample runs logged as kid_std)."""
    a, b = _gaussians(300, 8, seed=6)
    mean, std = metrics.kernel_inception_distance(a, b, num_subsets=20)
    full, full_std = metrics.kernel_inception_distance(a, b, num_subsets=20, subset_size=300)
    assert std > 0 and full_std == pytest.approx(0.0, abs=1e-9)
    assert abs(mean - full) < 3 * std  # unbiased either way: the same expected value


def test_prdc_sanity_figures_for_one_1000d_gaussian():
    """Naeem et al. 2020 / prdc README (10k samples, 1000-D, k=5): P 0.48, R 0.47, D 1.06,
    C 0.97. With 2000 samples P and R sit a little higher (~0.56); D and C match."""
    real, fake = _gaussians(2000, 1000, seed=5)
    precision, recall = metrics.precision_recall(real, fake, k=5)
    density, coverage = metrics.density_coverage(real, fake, k=5)
    assert 0.4 < precision < 0.7 and 0.4 < recall < 0.7
    assert 0.85 < density < 1.25
    assert 0.94 < coverage <= 1.0
    shifted = fake + 0.3
    p_s, r_s = metrics.precision_recall(real, shifted, k=5)
    d_s, c_s = metrics.density_coverage(real, shifted, k=5)
    assert p_s < precision / 4 and r_s < recall / 4
    assert d_s < density / 4 and c_s < coverage / 4


def test_knn_radii_exclude_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(metrics.knn_radii(points, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(metrics.knn_radii(points, 2), [3.0, 2.0, 3.0, 6.0])


def test_precision_recall_on_hand_built_sets():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: all 1
    fake = np.array([[0.5], [10.0], [11.0], [12.0]])  # radii: 9.5, 1, 1, 1
    precision, recall = metrics.precision_recall(real, fake, k=1)
    assert precision == 0.25  # only 0.5 lies within a real ball
    assert recall == 1.0  # the fake outlier 0.5 has radius 9.5, a ball over all real points
    density, coverage = metrics.density_coverage(real, fake, k=1)
    assert density == pytest.approx(2 / 4)  # 0.5 lies in the balls of 0 and 1
    assert coverage == pytest.approx(2 / 4)  # the balls of 0 and 1 hold a fake point


def test_precision_recall_defaults_to_the_papers_k_3():
    """Kynkaanniemi et al. (and StyleGAN's pr50k3): a point counts when it lies within
    the distance from some reference point to that point's 3rd nearest other point."""
    real, fake = _gaussians(60, 4, seed=2, shift=0.5)

    def inside(points, reference):
        gaps = np.linalg.norm(reference[:, None] - reference[None], axis=-1)
        radii = np.sort(gaps, axis=1)[:, 3]  # column 0 is the point itself
        return np.mean([(np.linalg.norm(reference - p, axis=1) <= radii).any() for p in points])

    expected = (inside(fake, real), inside(real, fake))
    assert metrics.precision_recall(real, fake) == pytest.approx(expected)
    assert metrics.precision_recall(real, fake, k=5) != pytest.approx(expected)


def test_streaming_equals_batch_computation():
    real, fake = _gaussians(600, 24, seed=6, shift=0.2)
    stats = [metrics.FeatureStats(capacity=1000), metrics.FeatureStats(capacity=1000)]
    for data, stat in zip((real, fake), stats, strict=True):
        for start in range(0, len(data), 128):  # uneven last batch on purpose
            stat.update(data[start : start + 128])
    moments = stats[0].moments
    np.testing.assert_allclose(moments.mean(), real.mean(0), atol=1e-12)
    np.testing.assert_allclose(moments.covariance(), np.cov(real, rowvar=False), atol=1e-10)
    streamed = metrics.compute_metrics(["fid", "kid", "pr", "dc"], *stats, num_subsets=5,
                                       subset_size=100)
    assert streamed["fid"] == pytest.approx(metrics.fid(real, fake), rel=1e-9)
    assert streamed["kid"] == pytest.approx(
        metrics.kernel_inception_distance(real, fake, 5, 100)[0], rel=1e-5)
    assert (streamed["precision"], streamed["recall"]) == metrics.precision_recall(real, fake)
    assert (streamed["density"], streamed["coverage"]) == pytest.approx(
        metrics.density_coverage(real, fake))


def test_streaming_statistics_keep_their_import_paths():
    import kgan.metrics

    for name in ("FeatureStats", "MeanCovariance", "Reservoir"):
        assert getattr(metrics, name) is getattr(stats, name) is getattr(kgan.metrics, name)


def test_reservoir_is_bounded_and_uniform():
    counts = np.zeros(100)
    for seed in range(200):
        reservoir = metrics.Reservoir(capacity=10, seed=seed)
        for start in range(0, 100, 7):
            reservoir.update(np.arange(start, min(start + 7, 100), dtype=float)[:, None])
        rows = reservoir.values()
        assert rows.shape == (10, 1) and reservoir.seen == 100
        counts[rows[:, 0].astype(int)] += 1
    # each row should be kept with probability 0.1, i.e. ~20 times in 200 draws
    assert counts.min() > 5 and counts.max() < 40
    assert counts[:50].sum() == pytest.approx(counts[50:].sum(), rel=0.25)


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown metric 'fidd'; valid names: dc, fid, kid, pr"):
        metrics.get_metric("fidd")


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="feature sizes differ"):
        metrics.fid(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"must be \[N, D\]"):
        metrics.precision_recall(np.zeros(10), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="at least 6 rows"):
        metrics.density_coverage(np.zeros((5, 2)), np.zeros((9, 2)), k=5)
    with pytest.raises(ValueError, match="keep no samples"):
        stats = metrics.FeatureStats(capacity=None)
        stats.update(np.zeros((3, 2)))
        metrics.compute_metrics(["kid"], stats, stats)
    with pytest.raises(ValueError, match="at least 2 rows"):
        one = metrics.FeatureStats()
        one.update(np.zeros((1, 2)))
        metrics.compute_metrics(["fid"], one, one)


def test_a_metric_defined_again_replaces_itself_and_another_is_refused(monkeypatch):
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))
    for scale in (1.0, 2.0):  # a notebook cell run twice
        @metrics.register_metric("mean_gap", ("mean_gap",))
        def mean_gap(real, fake, scale=scale, **_):
            return {"mean_gap": scale * float(abs(real.samples().mean() - fake.samples().mean()))}

    assert metrics.get_metric("mean_gap").compute is mean_gap

    with pytest.raises(ValueError, match="metric 'mean_gap' is already registered"):
        @metrics.register_metric("mean_gap", ("mean_gap",))
        def another(real, fake, **_):
            return {"mean_gap": 0.0}
