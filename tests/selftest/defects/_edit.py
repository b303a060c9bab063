"""One edit of a service's installed code for a defect image (patch.py files import this).

Each edit must match exactly once, or the build fails loudly: a defect that silently did
not apply would make the self-test prove nothing.
"""

from pathlib import Path


def replace_once(defect: str, target: str, edits: list[tuple[str, str]], what: str) -> None:
    path = Path(target)
    text = path.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            raise SystemExit(f"{defect}: {old.strip()[:60]!r} not found exactly once in {path}")
        text = text.replace(old, new)
    path.write_text(text)
    print(f"{defect}: patched {path} ({what})")
