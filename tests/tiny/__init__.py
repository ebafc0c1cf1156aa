"""Tests of playground/tiny."""
