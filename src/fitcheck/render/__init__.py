"""Renderers turn a Report into a string; only cli.py prints."""
