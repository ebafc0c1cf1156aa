"""Tests of playground/ui."""
