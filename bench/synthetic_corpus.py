"""Build a large synthetic corpus from shuffled, re-mixed sentences of the real article.

Each synthetic article keeps the real one's section headings and shape (paragraphs, lead-in + list),
with every paragraph and list re-drawn from the real sentences and list items, so it chunks like the
real one (~35-40 passages per article). Deterministic for a given seed.
Run: ``python -m bench.synthetic_corpus OUT_DIR [--articles 1000]``.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from bot.content.chunking import split_sentences
from bot.content.corpus import load_corpus
from bot.settings import PROJECT_ROOT

_HEADING = re.compile(r"^(#{2,4}) (.+)$")


def _pools(text: str) -> tuple[list[tuple[str, str]], list[str], list[str], list[str]]:
    """Headings (level marks, title), prose sentences, lead-ins and list items of the real article."""
    headings, sentences, lead_ins, items = [], [], [], []
    for block in text.split("\n\n"):
        block = block.strip()
        if match := _HEADING.match(block):
            headings.append((match.group(1), match.group(2)))
        elif block.startswith(("- ", "  - ")):
            items += [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
        elif block.endswith(":"):
            lead_ins.append(block)
        elif not block.startswith("#"):
            sentences += [block[s.start : s.end] for s in split_sentences(block)]
    items = [i for i in items if not i.startswith("**")]
    return headings, sentences, lead_ins, items


def synthetic_article(number: int, pools: tuple, rng: random.Random) -> str:
    """One article: the real headings, each followed by re-drawn paragraphs and a list."""
    headings, sentences, lead_ins, items = pools
    parts = [
        f"---\ntitle: Leg press field notes {number}\nsite: Synthetic\n---\n",
        f"# Leg press field notes {number}\n",
    ]
    parts.append(" ".join(rng.sample(sentences, 3)) + "\n")
    for marks, title in headings:
        parts.append(f"{marks} {title}\n")
        for _ in range(rng.randint(1, 2)):
            parts.append(" ".join(rng.sample(sentences, rng.randint(2, 3))) + "\n")
        if rng.random() < 0.5:
            listed = "\n".join(f"- {item}" for item in rng.sample(items, rng.randint(2, 4)))
            parts.append(f"{rng.choice(lead_ins)}\n\n{listed}\n")
    return "\n".join(parts)


def write_corpus(out: Path, articles: int, seed: int = 7) -> list[Path]:
    """Write ``articles`` synthetic Markdown files into ``out``; returns their paths."""
    [real] = load_corpus(PROJECT_ROOT / "corpus")
    pools = _pools(real.text)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(articles):
        path = out / f"synthetic-{number:04d}.md"
        path.write_text(synthetic_article(number, pools, random.Random(seed * 100_003 + number)), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    """Write the corpus and say how big it is."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--articles", type=int, default=1000)
    args = parser.parse_args()
    paths = write_corpus(args.out, args.articles)
    print(f"{len(paths)} articles, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
