"""Tests of playground/views."""
