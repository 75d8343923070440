"""Does a generated digit look like a digit? An independent classifier's verdict.

A scikit-learn RBF SVC (gamma 0.001, C 10: the classic 8x8-digits settings, ~98.5 %
on the held-out digits) is trained on the 8x8 ORIGINALS (0..16) of the training
split, so it shares nothing with the GAN, its pipeline or kgan's CNN feature network.
Images the GAN sees or makes (float [-1, 1], R x R, R a multiple of 8) are mapped back
to 8x8 0..16 by undoing the pipeline's value scaling (x -> (x + 1) / 2 * 16) and
averaging each (R/8) x (R/8) block. An image is *recognised* when its largest class
probability is >= the threshold.

The probabilities are libsvm's (what `SVC(probability=True)` gave before scikit-learn
1.9 deprecated it): a Platt sigmoid per class pair, fitted on out-of-fold decision
values with Platt's smoothed targets (Platt 1999; Lin, Lin & Weng 2007), coupled into
one distribution (Wu, Lin & Weng 2004, method 2). Unlike one-vs-rest calibration
(scikit-learn's suggested replacement), coupling gives flat probabilities far from
the training digits: noise, flat grey and pixel-shuffled digits score 0 % recognised,
where calibrated one-vs-rest SVCs and MLPs call 60-99 % of uniform noise a digit.

The pipeline's bilinear 8 -> 32 upsampling followed by the block average blurs a
little, so the reference is the real training split sent through the same round trip
(8x8 -> pipeline -> back to 8x8), not the originals.
"""

from __future__ import annotations

import itertools

import numpy as np

DIGIT_SIDE = 8
DIGIT_MAX = 16.0  # scikit-learn's digits hold 0..16


def to_digit_grid(images: np.ndarray) -> np.ndarray:
    """Images [N, R, R, C] in [-1, 1] -> flat 8x8 digits [N, 64] on the 0..16 scale.

    Channels are averaged, the value scaling is undone, then each (R/8)^2 block is
    averaged (area downsampling), the inverse of the pipeline's upsampling up to a blur.
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square [N, R, R, C], got shape {images.shape}")
    side = images.shape[1]
    if side % DIGIT_SIDE:
        raise ValueError(f"image side {side} is not a multiple of {DIGIT_SIDE}: cannot map "
                         "back to 8x8 digits; use a resolution of 8, 16, 32, ...")
    gray = (images.mean(axis=-1) + 1.0) / 2.0 * DIGIT_MAX
    block = side // DIGIT_SIDE
    grid = gray.reshape(len(images), DIGIT_SIDE, block, DIGIT_SIDE, block).mean(axis=(2, 4))
    return np.clip(grid, 0.0, DIGIT_MAX).reshape(len(images), -1)


def couple(pairwise: np.ndarray) -> np.ndarray:
    """Class probabilities [N, K] from pairwise ones r[n, i, j] = P(i | i or j, x).

    Wu, Lin & Weng (2004), method 2: p minimises sum_i sum_{j != i} (r_ji p_i - r_ij p_j)^2
    with sum p = 1, i.e. solves [[Q, 1], [1^T, 0]] [p; b] = [0; 1] with
    Q_ii = sum_{j != i} r_ji^2 and Q_ij = -r_ji r_ij.
    """
    count, classes = pairwise.shape[:2]
    transposed = np.swapaxes(pairwise, 1, 2)
    system = np.zeros((count, classes + 1, classes + 1))
    q = -transposed * pairwise
    off_diagonal = ~np.eye(classes, dtype=bool)
    q[:, ~off_diagonal] = (transposed ** 2 * off_diagonal).sum(axis=2)
    system[:, :classes, :classes] = q
    system[:, :classes, classes] = system[:, classes, :classes] = 1.0
    rhs = np.zeros((count, classes + 1, 1))
    rhs[:, classes] = 1.0
    return np.clip(np.linalg.solve(system, rhs)[:, :classes, 0], 0.0, 1.0)


class Recogniser:
    """Pairwise-coupled RBF SVC on flat 8x8 digits (0..16); `rate` scores [-1, 1] images.

    Args:
        digits: float [N, 8, 8] in [0, 1] (kgan's `digits_arrays` scale) of the training split.
        labels: int [N] class ids 0..K-1.
        threshold: smallest top class probability that counts as recognised.
        seed: seed of the folds the Platt sigmoids are fitted on.
    """

    description = ("RBF SVC (gamma=0.001, C=10) on the 8x8 originals, libsvm-style "
                   "pairwise-coupled Platt probabilities")

    def __init__(self, digits: np.ndarray, labels: np.ndarray, threshold: float = 0.9,
                 seed: int = 0) -> None:
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        x, labels = self._flat(digits), np.asarray(labels)
        self.classes = np.unique(labels)
        self.pairs = list(itertools.combinations(range(len(self.classes)), 2))
        self.svc = self._svc().fit(x, labels)
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        held_out = cross_val_predict(self._svc(), x, labels, cv=folds,
                                     method="decision_function")
        self.sigmoids = np.array([self._platt(held_out[:, k], labels, self.classes[i],
                                              self.classes[j])
                                  for k, (i, j) in enumerate(self.pairs)])

    @staticmethod
    def _svc():
        from sklearn.svm import SVC

        # "ovo": one decision value per class pair, in `itertools.combinations` order.
        return SVC(kernel="rbf", gamma=0.001, C=10.0, decision_function_shape="ovo")

    @staticmethod
    def _platt(values: np.ndarray, labels: np.ndarray, first, second) -> tuple[float, float]:
        """(A, B) of P(first | x) = sigmoid(A f + B), fitted on the pair's samples with
        Platt's targets (N+ + 1) / (N+ + 2) and 1 / (N- + 2) as sample weights."""
        from sklearn.linear_model import LogisticRegression

        mine = (labels == first) | (labels == second)
        f, positive = values[mine, None], labels[mine] == first
        target = np.where(positive, (positive.sum() + 1) / (positive.sum() + 2),
                          1 / ((~positive).sum() + 2))
        fit = LogisticRegression(C=1e6).fit(
            np.concatenate([f, f]), np.r_[np.ones(len(f)), np.zeros(len(f))],
            sample_weight=np.r_[target, 1 - target])
        return float(fit.coef_[0, 0]), float(fit.intercept_[0])

    @staticmethod
    def _flat(digits: np.ndarray) -> np.ndarray:
        return np.asarray(digits, np.float64).reshape(len(digits), -1) * DIGIT_MAX

    def probabilities(self, flat_digits: np.ndarray) -> np.ndarray:
        """Class probabilities [N, K] of flat 8x8 digits on the 0..16 scale."""
        values = self.svc.decision_function(flat_digits)
        pairwise_values = values * self.sigmoids[:, 0] + self.sigmoids[:, 1]
        first = np.clip(1.0 / (1.0 + np.exp(-pairwise_values)), 1e-7, 1 - 1e-7)
        pairwise = np.zeros((len(values), len(self.classes), len(self.classes)))
        for k, (i, j) in enumerate(self.pairs):
            pairwise[:, i, j], pairwise[:, j, i] = first[:, k], 1.0 - first[:, k]
        return couple(pairwise)

    def accuracy(self, digits: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy of the top class on 8x8 originals in [0, 1] (the classifier's quality)."""
        predicted = self.classes[self.probabilities(self._flat(digits)).argmax(axis=1)]
        return float(np.mean(predicted == labels))

    def rate(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """Share of images [N, R, R, C] in [-1, 1] recognised (top probability >=
        threshold); with labels, also the share whose top class is right."""
        probabilities = self.probabilities(to_digit_grid(images))
        result = {"recognised": round(float(np.mean(probabilities.max(axis=1)
                                                     >= self.threshold)), 4)}
        if labels is not None:
            predicted = self.classes[probabilities.argmax(axis=1)]
            result["correct"] = round(float(np.mean(predicted == labels)), 4)
        return result
