"""The engine turns a validated request into frames.

``plan`` decides sizes, frame counts and conditions (pure, no torch); ``backends`` run a model family; ``render``
is the one delivery path (request + keyframe sources -> the delivered frames), for the worker and the CLI.
Only worker processes import the backends: the API process never imports torch.
"""
