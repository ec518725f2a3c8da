import math

import numpy as np
import pytest
import torch

from manifold_course.grading.compare import compare


def test_equal_tensors_pass():
    x = torch.randn(3, 4)
    assert compare(x.clone(), x) is None


def test_numpy_where_torch_expected_is_named():
    msg = compare(np.zeros((2, 2), dtype=np.float32), torch.zeros(2, 2))
    assert "torch.Tensor" in msg and "numpy.ndarray" in msg


def test_torch_where_numpy_expected_is_named():
    msg = compare(torch.zeros(2, 2), np.zeros((2, 2)))
    assert ".numpy()" in msg


def test_wrong_shape_reports_both_shapes():
    msg = compare(torch.zeros(2, 3), torch.zeros(3, 2))
    assert "(2, 3)" in msg and "(3, 2)" in msg


def test_wrong_dtype_is_named():
    msg = compare(torch.zeros(3, dtype=torch.float64), torch.zeros(3))
    assert "torch.float64" in msg and "torch.float32" in msg


def test_nan_in_tensor_is_named():
    got = torch.tensor([1.0, float("nan"), 3.0])
    assert "NaN" in compare(got, torch.tensor([1.0, 2.0, 3.0]))


def test_inf_in_array_is_named():
    assert "inf" in compare(np.array([1.0, np.inf]), np.array([1.0, 2.0]))


def test_largest_error_location_reported():
    e = torch.zeros(4, 5)
    g = e.clone()
    g[2, 3] = 1.0
    msg = compare(g, e)
    assert "(2, 3)" in msg and "1 of 20" in msg


def test_float_tolerances():
    assert compare(1.0 + 1e-9, 1.0) is None
    assert "expected 1" in compare(1.1, 1.0)


def test_float_expected_but_tensor_given_says_item():
    assert ".item()" in compare(torch.tensor(1.0), 1.0)


def test_float_nan_and_overflow_messages():
    assert "NaN" in compare(math.nan, 0.5)
    assert "overflow" in compare(math.inf, 0.5)


def test_int_expected_rejects_float():
    assert "int" in compare(3.0, 3)
    assert compare(np.int64(3), 3) is None


def test_bool_expected():
    assert compare(True, True) is None
    assert "expected False" in compare(True, False)


def test_tuple_length_and_items():
    assert "2 items" in compare((1.0,), (1.0, 2.0))
    assert "the output[1]" in compare((1.0, 3.0), (1.0, 2.0))


def test_dict_missing_key_and_value():
    assert "missing" in compare({"a": 1.0}, {"a": 1.0, "b": 2.0})
    assert "['b']" in compare({"a": 1.0, "b": 3.0}, {"a": 1.0, "b": 2.0})


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_arrays_compare_exactly(dtype):
    e = np.arange(7, dtype=np.int64)
    g = e.astype(dtype)
    assert compare(g, e) is None
    g[3] = 0
    assert "index (3,)" in compare(g, e)


def test_string_mismatch():
    assert "'saddle'" in compare("min", "saddle")
