"""pcseg: 3D semantic segmentation with little or no manual labelling.

Importing the package is cheap and CPU-safe: heavy or optional libraries (MinkowskiEngine, spconv,
open3d, open_clip, timm, nerfstudio) are imported lazily where they are used.
"""

__version__ = "0.1.0"
