"""Image-level self-supervised pretraining (SimCLR, MoCo, W-MSE, AdCo, HCL, BYOL) with kNN / linear evaluation."""
