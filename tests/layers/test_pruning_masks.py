"""The mask helpers against NumPy: threshold (tfmot's k), block scores, N:M with ties."""

import numpy as np
import pytest
from keras import ops

from tfopt.layers import _pruning_masks as masks

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.999])
def test_threshold_is_the_kth_largest_with_tfmot_k(sparsity):
    values = np.random.default_rng(0).normal(size=(7, 9)).astype("float32")
    k = max(int(np.round(values.size * (1 - sparsity))), 1)
    expected = np.sort(np.abs(values).ravel())[::-1][k - 1]
    got = float(ops.convert_to_numpy(masks.threshold([ops.abs(values)], sparsity)))
    assert got == expected
    mask = ops.convert_to_numpy(masks.magnitude_mask(values, got))
    assert mask.sum() == k


def test_block_scores_are_block_means_of_magnitudes():
    w = np.random.default_rng(1).normal(size=(3, 4, 6)).astype("float32")
    got = ops.convert_to_numpy(masks.scores(w, (2, 3)))
    expected = np.abs(w).reshape(3, 2, 2, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_n_m_breaks_ties_towards_the_lower_index():
    w = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 2.0, -2.0, 1.0]], "float32").T  # groups along axis 0
    mask, pruned_max = masks.n_m_mask(w, 2, 4, axis=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(mask).T, [[1, 1, 0, 0], [0, 1, 1, 0]])
    assert float(ops.convert_to_numpy(pruned_max)) == 1.0


def test_n_m_matches_a_numpy_argsort_on_random_weights():
    w = np.random.default_rng(2).normal(size=(3, 3, 8, 5)).astype("float32")
    got = ops.convert_to_numpy(masks.n_m_mask(w, 3, 8, axis=-2)[0])
    groups = np.moveaxis(np.abs(w), -2, -1)
    order = np.argsort(-groups, axis=-1, kind="stable")[..., :3]
    expected = np.zeros_like(groups)
    np.put_along_axis(expected, order, 1.0, axis=-1)
    np.testing.assert_array_equal(got, np.moveaxis(expected, -1, -2))
