"""Headroom: a load management controller for EV charging sites."""

__version__ = "0.1.0"
