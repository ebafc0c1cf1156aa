"""Tests of playground/store."""
