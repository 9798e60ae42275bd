"""docs/events.md is generated from the event model and the pattern files and must be current."""
from pathlib import Path

from secdash.events import markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def test_events_doc_is_current(regen):
    text = markdown()
    if regen:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/events.md is stale: ./test.sh tests/test_docs.py --regen"
