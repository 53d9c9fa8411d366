"""Worker processes: claim a job, keep the lease alive, run the engine, store the output.

``render`` is the job-independent part (also used by ``dreamreel generate`` without a server);
``loop`` is the claim/heartbeat/finish cycle around it.
"""
