"""Point-cloud data: raw readers, the prepared scene format, weak labels, voxelisation, augmentation,
two-view sampling and batch collation. Knows nothing of networks."""
