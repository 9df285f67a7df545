"""cvsuite points: self-contrastive point-cloud learning (SCL), part segmentation, open3d I/O."""
