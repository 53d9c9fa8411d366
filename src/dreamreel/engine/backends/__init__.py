"""Model-family adapters. Each module imports torch/diffusers; import them lazily via ``load_backend``."""
