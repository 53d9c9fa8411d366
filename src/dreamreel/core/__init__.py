"""The domain and its contracts: validated requests, the generation state machine, failure codes, the job
store and file store protocols, the address policy, errors and the service verbs.

No HTTP, no torch and no other service package here (import-linter checks): dialects (api/) translate to
and from these types, stores implement its protocols, workers drive them.
"""
