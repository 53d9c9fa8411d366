"""Worker processes: claim a job, keep the lease alive, run the engine, store the output.

The job-independent part is the engine's (``engine.render``, also used by ``dreamreel generate`` without a
server); ``loop`` is the claim/heartbeat/encode/finish cycle around it, ``inputs`` the server's keyframe
sources (uploads, earlier generations), ``reencode`` the model-free upscale jobs.
"""
