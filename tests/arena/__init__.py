"""Tests of playground/arena."""
