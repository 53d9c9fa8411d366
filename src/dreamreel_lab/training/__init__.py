"""Training the embedded model on the procedural world (``dreamreel-lab train``); imports torch.

Stages, each resumable from its checkpoint in the work directory:
``vae`` (autoencoder) -> ``latents`` (encode a clip cache) -> ``flow`` (text encoder + transformer,
rectified flow with random frame conditioning) -> ``export`` (a diffusers ``LTXConditionPipeline``
directory); optionally ``decoder`` (the VAE's decoder alone, encoder frozen, so cached latents stay
valid). ``architecture`` fixes the component shapes (and the position embeddings a run may train with);
``autoencoder`` holds what the two autoencoder stages share and loads the trained VAE; ``data`` draws
world clips and ``worlds`` names the worlds they come from; ``grow`` deepens a trained transformer
(``--layers``); ``seed`` rebuilds a lost work directory from a shipped model. ``evaluate``
(``dreamreel-lab eval``) measures prompt adherence, sampling through ``sampler``: the service's backend
plus the experiment settings the service does not serve.
"""
