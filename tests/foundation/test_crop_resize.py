"""Batched crop resizing equals torch's own bicubic antialiased resize, box by box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pcseg.foundation.resize import bicubic_matrix, resize_batch, resize_boxes


@pytest.mark.parametrize("in_size,out_size", [(1, 5), (3, 8), (7, 7), (10, 32), (37, 16), (64, 7), (5, 2)])
def test_bicubic_matrix_matches_interpolate_along_one_axis(in_size, out_size):
    signal = torch.rand(1, 1, 1, in_size, dtype=torch.float64)
    ref = F.interpolate(signal, size=(1, out_size), mode="bicubic", align_corners=False, antialias=True)[0, 0, 0]
    got = torch.tensor(bicubic_matrix(in_size, out_size)) @ signal[0, 0, 0]
    assert torch.allclose(got, ref, atol=1e-6)
    # rows are interpolation weights: they sum to one
    assert np.allclose(bicubic_matrix(in_size, out_size).sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["matmul", "separable", "per_box", "auto"])
def test_resize_boxes_equals_per_box_resize(method):
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(3, 45, 61, generator=gen)
    rng = np.random.default_rng(1)
    boxes = []
    for _ in range(60):
        y0, x0 = rng.integers(0, 44), rng.integers(0, 60)
        boxes.append([y0, x0, rng.integers(y0 + 1, 46), rng.integers(x0 + 1, 62)])
    boxes.append([0, 0, 45, 61])  # the whole image
    boxes.append([44, 60, 45, 61])  # a single pixel in the corner
    boxes = np.array(boxes)
    for size in [(16, 16), (9, 23), (64, 64)]:
        got = resize_boxes(image, boxes, size, method=method)
        ref = torch.cat([resize_batch(image[None, :, a:c, b:d], size) for a, b, c, d in boxes])
        assert got.shape == (len(boxes), 3, *size)
        assert torch.allclose(got, ref, atol=2e-5), (got - ref).abs().max()
        assert got.min() >= 0 and got.max() <= 1


def test_resize_boxes_rejects_boxes_outside_the_image():
    image = torch.rand(3, 10, 10)
    with pytest.raises(ValueError, match="inside"):
        resize_boxes(image, np.array([[0, 0, 11, 5]]), (4, 4))
    with pytest.raises(ValueError, match="non-empty"):
        resize_boxes(image, np.array([[3, 3, 3, 5]]), (4, 4))
    with pytest.raises(ValueError, match="method"):
        resize_boxes(image, np.array([[0, 0, 5, 5]]), (4, 4), method="fast")
    assert resize_boxes(image, np.zeros((0, 4), dtype=np.int64), (4, 4)).shape == (0, 3, 4, 4)
