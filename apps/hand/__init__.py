"""Hand keypoints/shape with momentum-contrastive pretraining on background-swapped and multi-view pairs (HanCo), FreiHAND evaluation."""
