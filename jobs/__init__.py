"""Heavier jobs than a live session: digits, sweeps, loss landscapes, Hessian spectra.

``jobs.specs`` validates what a browser asks for, ``jobs.kinds`` splits a job into pieces
(one Dask task each), runs a piece on the numpy engine or on torch, and combines the
pieces' partial results. ``jobs.context.Context`` is what job code sees while it runs.
This package imports ``engine``, numpy, pydantic and dask, and torch only lazily inside
job code; never ``app``.
"""
