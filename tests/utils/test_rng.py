import numpy as np
import pytest
import torch

from pcseg.utils.rng import numpy_rng, torch_generator


def test_same_keys_same_stream_different_keys_different_stream():
    a = numpy_rng(3, 1, "scene0000_00").random(5)
    b = numpy_rng(3, 1, "scene0000_00").random(5)
    c = numpy_rng(3, 2, "scene0000_00").random(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_string_keys_are_not_ambiguous():
    assert not np.allclose(numpy_rng(0, "ab", "c").random(3), numpy_rng(0, "a", "bc").random(3))


def test_torch_generator_keyed():
    x = torch.rand(4, generator=torch_generator(1, 7))
    y = torch.rand(4, generator=torch_generator(1, 7))
    z = torch.rand(4, generator=torch_generator(1, 8))
    assert torch.equal(x, y) and not torch.equal(x, z)


def test_negative_key_rejected():
    with pytest.raises(ValueError):
        numpy_rng(0, -1)
