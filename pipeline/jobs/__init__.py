"""The nightly job (`custody nightly`) and its executors: the local pool or a Dask cluster.

Only this package imports `dask` and `distributed`, and only `pipeline.jobs.cluster` does,
when a cluster is asked for: the local run never pays for the import.
"""
