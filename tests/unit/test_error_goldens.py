"""Bad input as file pairs: tests/golden/errors/NAME.yaml must make `netlab validate` print NAME.txt.

A new validation is a new pair of files. NETLAB_UPDATE_GOLDEN=1 rewrites the .txt files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlab.errors import InputError
from netlab.spec.loader import load_text

CASES = sorted((Path(__file__).parents[1] / "golden" / "errors").glob("*.yaml"))


def shown(err: InputError) -> str:
    """What the CLI prints for the error (InputError.show), as text."""
    lines = [f"error: {p}" for p in err.problems]
    if len(err.problems) > 1:
        lines.append(f"{len(err.problems)} problems; nothing was built")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_bad_input_is_reported_as_the_golden_file_says(case: Path):
    with pytest.raises(InputError) as err:
        load_text(case.read_text(), case.name)
    expected = case.with_suffix(".txt")
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        expected.write_text(shown(err.value))
    assert shown(err.value) == expected.read_text()
    assert err.value.exit_code == 2
