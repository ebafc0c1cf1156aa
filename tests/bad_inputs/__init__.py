"""Bad inputs and faults, by subject (docs/bad-inputs.md)."""
