"""Unit tests: pure functions, no servers or databases."""
