"""The benchmark of our extract and load (entry point: ``bench/run.py``; see bench/README.md).

``settings`` what a run works on; ``measure`` the clock, the worker subprocess and its RSS
sampler; ``worker`` one measurement in its own process; ``fixtures`` the source table, the
warehouse database, the S3 server; ``floors`` the client floors; ``ours`` our extract and
load; ``peer`` SqlToS3Operator; ``verify`` the row checks; ``report`` ratios, targets, the
table and the JSON; ``runner`` one run from set-up to clean-up.
"""
