"""Ground truth for the model: measure a real host and compare.

- :mod:`napikit.host.procfs` reads the kernel's counters (``/proc``, ``/sys``) under a
  configurable root; :mod:`napikit.host.facts` describes the host.
- :mod:`napikit.host.calibrate` (``napikit calibrate``) measures micro-costs with the
  compiled loops of ``napikit.host._bench`` and writes a cost file
  (:mod:`napikit.host.costfile`).
- :mod:`napikit.host.kernel_bench` (``napikit kernel-bench``) runs the real loopback-UDP
  experiment with RPS.
- :mod:`napikit.host.validate` (``napikit validate``) simulates each real configuration
  and compares. See ``docs/validation.md``.
"""
