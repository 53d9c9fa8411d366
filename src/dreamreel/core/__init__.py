"""The domain: validated requests, the generation state machine, errors and the service verbs.

No HTTP and no torch here: dialects (api/) translate to and from these types, workers drive them.
"""
