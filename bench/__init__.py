"""Benchmark the gateway against the engine, an instant stub and the database."""
