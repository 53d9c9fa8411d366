"""One module per external API dialect: parse its request shape, call core, render its responses.

Each module exposes ``attach(app)`` which mounts its router and its error handler.
"""
