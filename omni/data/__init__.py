"""Training and evaluation data: the procedural toy world, manifests, latent caching, bucketing."""
