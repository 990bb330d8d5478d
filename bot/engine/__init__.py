"""The engine: the answer chain over one loaded model and index, and the process-wide default engine."""

from bot.engine.engine import Engine, default_engine

__all__ = ["Engine", "default_engine"]
