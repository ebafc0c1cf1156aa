"""Tests of playground/engines."""
