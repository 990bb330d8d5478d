"""The evaluation harness: question sets → ``Engine.ask`` → metrics, reports and a regression gate.

A thin shell over the engine: ``runner`` asks every case through the same ``ask`` the chat page uses, and
``metrics`` scores only what the reply contains. ``python -m bot eval`` (``bot/cli.py``) drives it.
"""
