"""Shipped model weights: the tuned e5 encoder's low-rank change (tuned_e5.py)."""
