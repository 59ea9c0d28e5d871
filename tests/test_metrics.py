import numpy as np
import pytest
import torch

from pcseg.metrics import ConfusionMatrix, view_iou_and_accuracy


def test_iou_against_hand_computation():
    cm = ConfusionMatrix(3)
    target = torch.tensor([0, 0, 1, 1, 1, 2, -1])
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 2])
    cm.update(pred, target)
    # class 0: TP 1, FP 1 (a 1 predicted 0), FN 1 -> 1/3 ; class 1: TP 2, FP 1, FN 1 -> 2/4 ; class 2: 1/1
    np.testing.assert_allclose(cm.iou(), [1 / 3, 0.5, 1.0])
    assert cm.miou() == pytest.approx((1 / 3 + 0.5 + 1.0) / 3)
    assert cm.accuracy() == pytest.approx(4 / 6)


def test_absent_class_is_nan_and_skipped():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert np.isnan(cm.iou()[2])
    assert cm.miou() == 1.0


def test_out_of_range_labels_raise():
    cm = ConfusionMatrix(2)
    with pytest.raises(ValueError, match="target ids"):
        cm.update(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(ValueError, match="predicted ids"):
        cm.update(torch.tensor([3]), torch.tensor([0]))


def test_merge_equals_single_update():
    rng = np.random.default_rng(0)
    p, t = rng.integers(0, 4, 200), rng.integers(-1, 4, 200)
    whole = ConfusionMatrix(4)
    whole.update(torch.from_numpy(p), torch.from_numpy(t))
    a, b = ConfusionMatrix(4), ConfusionMatrix(4)
    a.update(torch.from_numpy(p[:77]), torch.from_numpy(t[:77]))
    b.update(torch.from_numpy(p[77:]), torch.from_numpy(t[77:]))
    a.merge(b)
    assert torch.equal(a.matrix, whole.matrix)


def test_summary_table_lists_classes():
    cm = ConfusionMatrix(2)
    cm.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]))
    table = cm.summary(["wall", "floor"]).table()
    assert "wall" in table and "floor" in table and "mIoU" in table


def test_view_metric_matches_sklearn_semantics():
    # 2x3 image, 3 classes; GT pixel (0,2) has no class (all-zero row) -> always wrong for accuracy.
    gt = np.zeros((2, 3, 3), dtype=np.uint8)
    gt[0, 0, 0] = gt[0, 1, 0] = 1
    gt[1, :, 1] = 1
    pred = np.array([[0, 1, 1], [1, 1, 1]])
    iou, acc = view_iou_and_accuracy(pred, gt)
    # class 0: inter 1, union 2 ; class 1: inter 3, union 5 ; class 2: absent everywhere -> 0
    np.testing.assert_allclose(iou, [0.5, 0.6, 0.0])
    assert acc == pytest.approx(4 / 6)
