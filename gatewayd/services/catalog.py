"""Imports every service module so that its operations and factories are registered."""

from . import access, journal_ops  # noqa: F401
