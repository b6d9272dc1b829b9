"""The shared kernel every package may use: signed tokens and VERP, page links, the clock."""
