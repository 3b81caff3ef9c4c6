# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""napikit's simulation core with trace recording compiled in (core/trace.pxi).

The same source as :mod:`napikit._core`, built with ``NAPIKIT_TRACE_BUILD`` (setup.py):
:class:`napikit.Simulation` uses it only for a run that asks for a trace, so that every
other run pays nothing for the recording sites.
"""

include "_core.pyx"
