"""The pair rule (docs/design.md), case by case."""

import pytest

from pipeline.pairs import find_candidates, is_dialogue
from pipeline.records import Counters, Episode


def pairs(*lines):
    return [(c.line, c.utterance, c.reply) for c in find_candidates(Episode(1, list(lines)))]


@pytest.mark.parametrize(
    "line,expected",
    [
        ("「あ」", True),
        ("「あ『い』う」", True),
        ("「あ「い」う」", True),  # nested 「」 closed before the end, outer closed last
        ("「あ」「い」", False),  # first 「 closed before the end
        ("「あ」と言った", False),
        ("彼は「あ」", False),
        ("「あ", False),
        ("「あ」」", False),
        ("「」", True),
        ("「", False),
    ],
)
def test_is_dialogue(line, expected):
    assert is_dialogue(line) is expected


def test_run_of_n_lines_gives_n_minus_1_pairs():
    assert pairs("「一」", "「二」", "「三」") == [(0, "一", "二"), (1, "二", "三")]


def test_narration_breaks_the_run():
    assert pairs("「一」", "地の文。", "「二」", "「三」") == [(2, "二", "三")]


def test_blank_lines_do_not_break_the_run_and_count_as_lines():
    assert pairs("「一」", "", "　", "「二」") == [(0, "一", "二")]


def test_white_space_and_ideographic_space_are_stripped():
    assert pairs("　「一」　", "\t「二」 ") == [(0, "一", "二")]


def test_not_a_dialogue_line_breaks_the_run():
    assert pairs("「一」", "「二」「三」", "「四」") == []


def test_ruby_is_not_part_of_the_text_but_is_kept_for_reading():
    (c,) = list(find_candidates(Episode(3, ["「邪智《じゃち》だ」", "「｜王様《おうさま》か」"])))
    assert (c.episode, c.utterance, c.reply) == (3, "邪智だ", "王様か")
    assert c.utterance_ruby == "邪智《じゃち》だ"
    assert c.reply_ruby == "｜王様《おうさま》か"


def test_counters():
    c = Counters()
    list(find_candidates(Episode(1, ["「一」", "地", "「二」", "「三」", ""]), c))
    assert (c["lines"], c["dialogue_lines"]) == (5, 3)
