"""CURL: continual unsupervised representation learning (Rao et al. 2019)."""
