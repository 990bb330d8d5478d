"""The evaluation harness: question sets → ``Engine.ask`` → metrics, reports and a regression gate.

A thin shell over the engine: ``runner`` asks every case through the same ``ask`` the chat page uses, and
``metrics`` scores only what the reply contains. ``suite`` makes one whole run (per composer: run, gate,
compare, reports); ``python -m bot eval`` (``bot/cli/eval.py``) drives it.
"""
