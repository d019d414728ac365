"""docs/reliability.md is generated from the cases the fault tests run (tests/reliability_doc.py)."""
from tests.conftest import REPO
from tests.reliability_cases import DAMAGE
from tests.reliability_doc import ALL, render

DOC = REPO / "docs" / "reliability.md"


def test_reliability_doc_is_up_to_date():
    assert DOC.read_text() == render() + "\n", (
        "docs/reliability.md is stale: run `python -m tests.reliability_doc > docs/reliability.md`")


def test_every_case_has_a_unique_id_and_is_listed_with_its_message():
    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids))
    text = DOC.read_text()
    for case in ALL:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{case.id}` |"))
        assert case.sees.replace("|", "\\|") in row


def test_every_damage_case_is_run_by_a_test():
    # test_faults_damage.py selects damage cases by these spec keys (or by id, for the metrics one)
    for case in DAMAGE:
        assert "which" in case.spec or "stage" in case.spec or case.id == "damaged-metrics-line", case.id
