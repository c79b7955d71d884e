"""Experiments that test the method's claims end to end (each a sub-package with its config, pipeline and report)."""
