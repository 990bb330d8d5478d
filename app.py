"""Start the bot: a chat in the terminal (the web page arrives with the HTTP shell).

Thin shell over ``Engine.ask``; the conversation so far is passed with every question.
"""

from __future__ import annotations

import sys

from bot.cli import configure_logging, load_engine, render_text
from bot.compose import EXAMPLE_QUESTIONS


def main() -> None:
    """Chat until end of input (Ctrl-D) or Ctrl-C."""
    configure_logging()
    print("Loading the knee-pain coach…", file=sys.stderr)
    engine = load_engine()
    print("Ask about knee pain after the leg press. For example:")
    for example in EXAMPLE_QUESTIONS:
        print(f"  • {example}")
    print("Type 'new' to start a new conversation; Ctrl-D to quit.\n")
    history: list[dict[str, str]] = []
    while True:
        try:
            question = input("you › ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if question.strip().lower() == "new":
            history = []
            print("(new conversation)\n")
            continue
        answer = engine.ask(question, history)
        print(f"\n{render_text(answer)}\n")
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]


if __name__ == "__main__":
    main()
