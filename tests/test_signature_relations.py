"""Issue 13.3: a structurally valid but hand-edited signature is refused by its
internal relations before anything is re-measured (corners, bisection, tightest)."""

from __future__ import annotations

import copy
import json

import pytest

from driftlab.forensics.validate import SignatureError, validate_signature
from tests.signature_cases import BrightnessBand, constructed_signature


@pytest.fixture(scope="module")
def sig():
    return json.loads(json.dumps(constructed_signature(BrightnessBand())))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s["box"]["corners"].pop(), "box.corners"),
        (lambda s: s["box"].update(corner_limit=8), "box.corners"),
        (lambda s: s["box"]["checks"][1].update(scale=0.75), "box.checks[1].scale"),
        (lambda s: s["box"]["checks"].pop(), "box.scale"),
        (lambda s: s["tightest"].update(high=s["tightest"]["high"] + 0.1), "tightest.high"),
        (lambda s: s["stages"][0].update(tightest="no_such.param"), "stages[0].tightest"),
        (lambda s: s["envelope"]["gamma.gamma"].update(unit="volts"), "envelope.gamma.gamma.unit"),
        (lambda s: s["worst_case"].update(accepted=False), "worst_case.accepted"),
        (lambda s: s["acceptance"].update(floor=0.5), "acceptance.floor"),
    ],
    ids=[
        "drop-corner",
        "corner-limit",
        "bisection",
        "published-check",
        "tightest",
        "stage-tightest",
        "unit",
        "accepted",
        "floor",
    ],
)
def test_hand_edited_relations_are_refused_naming_the_field(sig, edit, field):
    forged = copy.deepcopy(sig)
    validate_signature(copy.deepcopy(sig))
    edit(forged)
    with pytest.raises(SignatureError) as info:
        validate_signature(forged)
    assert f"field '{field}'" in str(info.value)
