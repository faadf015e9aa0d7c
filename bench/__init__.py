"""Benchmarks of the storefront at a realistic scale; see bench/README.md."""
