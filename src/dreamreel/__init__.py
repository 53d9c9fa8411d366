"""dreamreel: a self-hosted video generation service that speaks the Ray 2 APIs (Luma, fal, AI/ML)."""

__version__ = "0.1.0"
