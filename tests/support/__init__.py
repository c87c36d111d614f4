"""Test-only helpers: servers run in threads and a proxy in front of the engine."""
