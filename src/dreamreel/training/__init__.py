"""Training the embedded model on the procedural world (``dreamreel train``); imports torch.

Stages, each resumable from its checkpoint in the work directory:
``vae`` (autoencoder) -> ``latents`` (encode a clip cache) -> ``flow`` (text encoder + transformer,
rectified flow with random frame conditioning) -> ``export`` (a diffusers ``LTXConditionPipeline``
directory); optionally ``decoder`` (the VAE's decoder alone, encoder frozen, so cached latents stay
valid). ``architecture`` fixes the component shapes; ``data`` draws world clips; ``grow`` deepens a
trained transformer (``--layers``); ``seed`` rebuilds a lost work directory from a shipped model.
"""
