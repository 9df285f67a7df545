"""Blind super-resolution by contrastive representation learning (CRL-SR); see README.md."""
