"""Test-only helpers that the package must not ship (a broker outage, for one)."""
