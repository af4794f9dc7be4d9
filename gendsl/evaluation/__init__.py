"""Held-out evaluation of a trained model: likelihoods (nats and bits/dim), sample quality."""
