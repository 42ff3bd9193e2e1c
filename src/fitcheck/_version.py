"""The one version source: the package, the JSON documents, the user agent and pyproject.toml read it here."""

__version__ = "0.1.0"
