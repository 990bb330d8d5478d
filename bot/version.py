"""The product's version (the engine adds the index build it answers from: ``0.1.0+index.3``)."""

__version__ = "0.1.0"
