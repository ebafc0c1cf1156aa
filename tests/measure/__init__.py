"""Tests of playground/measure."""
