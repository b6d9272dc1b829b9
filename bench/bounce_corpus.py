"""How well the bounce parser reads a labelled corpus: recipients found, reason agreement,
hard/soft agreement, and non-bounces (auto-replies, challenges) counted as bounces.

    PYTHONPATH=. python bench/bounce_corpus.py [FOLDER] [--verbose]

FOLDER (default tests/data/bounces) holds the messages and labels.csv with the columns
file, recipients (space-separated; empty for non-bounces), reason (empty: not labelled),
severity (hard, soft or none; empty: not labelled), source. No database: it measures
mailer.bounces.parse and mailer.bounces.reasons, which decide what every intake records.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from mailer.bounces.parse import parse_message
from mailer.bounces.reasons import MESSAGE_LEVEL

UNSUBSCRIBE = "afmelden@bounces.gt.example.nl"
COUNTED = ("hard", "soft")


def severity_of(kind: str) -> str:
    return kind if kind in COUNTED else "none"


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv
    args = [a for a in argv if not a.startswith("--")]
    folder = Path(args[0]) if args else Path(__file__).parent.parent / "tests/data/bounces"
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        labels = list(csv.DictReader(handle))
    wanted = found = 0
    reasons_total = reasons_agree = 0
    severity_total = severity_agree = 0
    non_bounces = non_bounces_counted = 0
    message_level = message_level_hard = 0
    for row in labels:
        report = parse_message((folder / row["file"]).read_bytes(),
                               unsubscribe_address=UNSUBSCRIBE)
        findings = report.findings
        got = {f.recipient.lower() for f in findings if f.recipient}
        expected = {r.lower() for r in row["recipients"].split()}
        missing = expected - got
        wanted += len(expected)
        found += len(expected) - len(missing)
        first = findings[0] if findings else None
        reason = first.reason if first else ""
        severity = severity_of(first.kind) if first else "none"
        problems = []
        if missing:
            problems.append(f"missing {sorted(missing)}")
        if row["reason"]:
            reasons_total += 1
            reasons_agree += reason == row["reason"]
            if reason != row["reason"]:
                problems.append(f"reason {reason} (labelled {row['reason']})")
        if row["severity"]:
            severity_total += 1
            severity_agree += severity == row["severity"]
            if severity != row["severity"]:
                problems.append(f"severity {severity} (labelled {row['severity']})")
        if row["reason"] in ("auto-reply", "challenge-response"):
            non_bounces += 1
            if any(f.kind in COUNTED for f in findings):
                non_bounces_counted += 1
                problems.append("a non-bounce counted")
        if row["reason"] in MESSAGE_LEVEL:
            message_level += 1
            if any(f.kind == "hard" for f in findings):
                message_level_hard += 1
                problems.append("a message-level refusal marked hard")
        if verbose and problems:
            print(f"{row['file']}: {'; '.join(problems)}")

    def share(part: int, whole: int) -> str:
        return f"{part}/{whole} ({part / whole:.1%})" if whole else "0/0"

    print(f"messages:                 {len(labels)}")
    print(f"recipients found:         {share(found, wanted)}")
    print(f"reason agreement:         {share(reasons_agree, reasons_total)}")
    print(f"hard/soft agreement:      {share(severity_agree, severity_total)}")
    print(f"non-bounces counted:      {non_bounces_counted} of {non_bounces}")
    print(f"message-level marked hard: {message_level_hard} of {message_level}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
