"""SCRL: spatially consistent representation learning and its transfer to object detection."""
