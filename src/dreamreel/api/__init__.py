"""The HTTP app: one FastAPI application, the dialect registry (one router each), files, uploads and health.

This package never imports torch (import-linter and a run-time test check): generation runs in worker processes.
"""
