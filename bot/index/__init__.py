"""The index: vectors (Chroma), BM25 and the manifest naming the live version."""
