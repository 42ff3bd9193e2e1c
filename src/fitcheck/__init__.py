"""fitcheck: will this LLM fit on this machine, and how should llama.cpp run it?"""

__version__ = "0.1.0"
