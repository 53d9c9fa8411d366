"""The HTTP app: one FastAPI application, one router per dialect, a files route and health.

This package must never import torch (a test checks): generation runs in worker processes.
"""
