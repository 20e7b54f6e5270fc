"""Benchmark Engine: measure AI model providers on the same prompt and keep every measurement."""

__version__ = "0.2.0"
