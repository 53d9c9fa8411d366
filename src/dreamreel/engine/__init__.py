"""The engine turns a validated request into frames.

``planner`` decides sizes and frame counts (pure, no torch); ``backends`` run a model family.
Only worker processes import the backends: the API process never imports torch.
"""
