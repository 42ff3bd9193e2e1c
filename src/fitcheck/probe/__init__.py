"""Turn this machine (or command-line overrides) into a Hardware value."""
