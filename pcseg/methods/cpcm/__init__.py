"""CPCM (cpcm_hpal.md Part I): RegionMask, the official consistency losses, the ramp-up and the method."""

from pcseg.methods.cpcm.losses import js_divergence, js_divergence_logits
from pcseg.methods.cpcm.rampup import sigmoid_rampup
from pcseg.methods.cpcm.region_mask import cell_index, draw_masked_cells, mask_batch, region_mask

__all__ = ["cell_index", "draw_masked_cells", "js_divergence", "js_divergence_logits", "mask_batch",
           "region_mask", "sigmoid_rampup"]
