"""Idempotent start gateway for Camunda 7 compatible engines."""
