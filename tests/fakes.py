"""Fakes at the seams, so unit tests of stages, the index and the server run in milliseconds.

Integration tests keep the real model, Chroma (a directory and a ``chroma run`` server) and the browser.
"""

from __future__ import annotations

# -- embeddings and the vector store (bot.index) ------------------------------------------------------


# (filled in by the index work)


# -- the engine, as the server sees it (bot.server) ---------------------------------------------------


# (filled in by the server work)
