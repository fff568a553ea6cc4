"""Readings: ruby first, numbers, punctuation, long vowels, small kana, both readers."""

from pathlib import Path

import pytest

from pipeline.kana import is_kana_text, read_side, split_ruby, strip_ruby, to_katakana
from pipeline.numbers import read_numbers

READERS = ["pykakasi", "unidic"]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    "text,expected",
    [
        ("邪智暴虐《じゃちぼうぎゃく》の王", "ジャチボウギャクノオウ"),  # implicit ruby
        ("疲労｜困憊《こんぱい》", "ヒロウコンパイ"),  # explicit ruby
        ("｜今日《こんにち》は", "コンニチハ"),  # ruby beats the reader
        ("十六夜《いざよい》", "イザヨイ"),
        ("3回", "サンカイ"),
        ("1945年", "センキュウヒャクヨンジュウゴネン"),
        ("３本", "サンボン"),
        ("すごーい", "スゴーイ"),  # long vowel kept
        ("ちょっとぁ", "チョットァ"),  # small kana kept
        ("ｶﾞｯｺｳ", "ガッコウ"),  # half-width widened
        ("なに!?", "ナニ！？"),
        ("待って〜", "マッテ～"),
        ("ただ、――", "タダ、…"),
        ("あ‥", "ア…"),
        ("OK", "オーケー"),
        ("わざ／＼", "ワザワザ"),
        ("（笑）", "ワライ"),
        ("あっ♡", "アッ"),
        ("『はい』と", "『ハイ』ト"),
    ],
)
def test_readings(reader, text, expected):
    assert to_katakana(text, reader) == expected


@pytest.mark.parametrize("reader", READERS)
def test_kanji_numerals_and_repeat_marks(reader):
    assert to_katakana("三回", reader) == "サンカイ"
    assert to_katakana("吾々", reader) == "ワレワレ"


def test_unidic_reads_context_better_than_pykakasi():
    assert to_katakana("人を殺します", "unidic") == "ヒトヲコロシマス"


def test_output_is_in_the_alphabet_or_keeps_what_cannot_be_read():
    assert is_kana_text(to_katakana("今日は、いい天気だ！", "pykakasi"))
    assert not is_kana_text(to_katakana("😀", "pykakasi"))
    assert not is_kana_text("abc")
    assert is_kana_text("ア、ヴ。ー！？…・「」『』～")


def test_split_and_strip_ruby():
    assert split_ruby("彼は邪智《じゃち》だ") == [("彼は", None), ("邪智", "じゃち"), ("だ", None)]
    assert strip_ruby("疲労｜困憊《こんぱい》と｜ＡＢ《エービー》") == "疲労困憊とＡＢ"
    assert strip_ruby("あ《注》い") == "あい"  # ruby with no base is dropped


@pytest.mark.parametrize(
    "text,expected",
    [
        ("0", "ゼロ"),
        ("10", "ジュウ"),
        ("11", "ジュウイチ"),
        ("100", "ヒャク"),
        ("300", "サンビャク"),
        ("600", "ロッピャク"),
        ("800", "ハッピャク"),
        ("1000", "セン"),
        ("3000", "サンゼン"),
        ("8000", "ハッセン"),
        ("10000", "イチマン"),
        ("2024年", "ニセンニジュウヨネン"),
        ("1億", "イチオク"),
        ("3.5", "サンテンゴ"),
        ("007", "ゼロゼロナナ"),
        ("1,000円", "センエン"),
        ("1本", "イッポン"),
        ("6本", "ロッポン"),
        ("1人", "ヒトリ"),
        ("2人", "フタリ"),
        ("4人", "ヨニン"),
        ("4時", "ヨジ"),
        ("9時", "クジ"),
        ("4月", "シガツ"),
        ("3日", "ミッカ"),
        ("1回", "イッカイ"),
        ("8分", "ハップン"),
        ("3つ", "ミッツ"),
    ],
)
def test_numbers(text, expected):
    assert read_numbers(text) == expected


def test_fast_pykakasi_lookup_reads_exactly_like_pykakasi():
    """pipeline.kana replaces pykakasi's dictionary scan by key look-ups: same output."""
    import pykakasi
    from conftest import SAMPLES

    from pipeline.kana import PykakasiReader

    stock = pykakasi.kakasi()
    ours = PykakasiReader()
    lines = []
    for f in sorted(SAMPLES.glob("*.txt")):
        lines += [strip_ruby(ln) for ln in f.read_bytes().decode("cp932").splitlines() if ln.strip()][:300]
    lines += ["一人で大丈夫", "今日は大学へ", "々", "𠮷野家", "葛\U000e0100城"]  # variation selector too
    assert len(lines) > 800
    for line in lines:  # token by token: the reader's spoken readings (pipeline.spoken) come after these
        got = [(d["orig"], d["kana"]) for d in ours._kks.convert(line)]
        assert got == [(d["orig"], d["kana"]) for d in stock.convert(line)], line


# ---------------------------------------------------------------- any input

_PIECES = [
    "漢字",
    "人",
    "清葉",
    "《きよは》",
    "｜",
    "《",
    "》",
    "「",
    "」",
    "、",
    "。",
    "3",
    "１２",
    ",",
    "ｶﾞ",
    "ﾞ",
    "ー",
    "―",
    "…",
    "々",
    "〻",
    "ゝ",
    "ヾ",
    "／＼",
    "／″＼",
    "A",
    "ｚ",
    "😀",
    "\u3000",
    " ",
    "\t",
    "\x00",
    "\x1b",
    "\f",
    "\v",
    "\n",
    "#",
    "*",
    "\ufe00",
    "葛\U000e0100",
    "𠮷",
    "（",
    "）",
    "~",
    "♡",
    "※",
]


@pytest.mark.parametrize("reader", READERS)
def test_any_input_reads_without_error(reader):
    """Whatever the text, reading never fails, and the result is either in the alphabet
    or holds something extract-pairs drops (counted): never a delimiter of the reader."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from pipeline.kana import read_side
    from pipeline.rubymemory import RubyMemory

    memory = RubyMemory.from_lines(["清葉《きよは》", "｜お嬢様《おじょうさま》"])
    text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=12).map("".join)

    @settings(max_examples=150, deadline=None, database=None)
    @given(text)
    @example("漢字\ufe00々")  # a selector inside a word: stock pykakasi fails on it
    def check(s):
        out = read_side(s, reader, memory)
        assert isinstance(out, str)
        assert all(c in s for c in out if c in "\f\v\t\n\x00\x01\x02#*")  # no delimiter leaks
        if is_kana_text(out):
            return
        # Not in the alphabet: extract-pairs drops it; what is left is outside the alphabet
        # because the input held something unreadable, never because a readable piece was lost.
        assert any(not is_kana_text(to_katakana(c, reader)) for c in s)

    check()


def test_unidic_output_format_reads_like_the_token_api():
    """The C-side output format gives what fugashi's tokens give, token by token."""
    import re

    import fugashi
    from conftest import SAMPLES

    from pipeline import spoken
    from pipeline.kana import _AS_WRITTEN, UnidicReader

    tagger = fugashi.Tagger()
    as_written = re.compile(f"[{_AS_WRITTEN}]+")
    fallback = UnidicReader()._fallback

    def by_tokens(text):
        out = []
        for w in tagger(text):
            kana = None if w.is_unk else w.feature.kana
            if as_written.fullmatch(w.surface):
                out.append((w.surface, w.surface))
            elif kana and kana != "*":
                out.append((w.surface, kana))
            else:
                out.append((w.surface, fallback.read(w.surface)))
        return "".join(spoken.apply(out))  # then the spoken readings of everyday words

    ours = UnidicReader()
    lines = []
    for f in sorted(SAMPLES.glob("*.txt")):
        lines += [strip_ruby(ln) for ln in f.read_bytes().decode("cp932").splitlines() if ln.strip()][:200]
    lines += ["abc ＡＢＣ ｶﾞ 123", "「」", "# * 　", "王様は、人を殺します。", "明日、私は何をしよう", "一昨日の何だ"]
    for line in lines:
        assert ours.read(line) == by_tokens(line), line


@pytest.mark.parametrize("reader", READERS)
def test_long_lines_read_like_their_parts(reader):
    """A long line reads as its sentences do (the dictionary look-up only sees a word's window)."""
    sentence = "王様は人を殺します。邪智暴虐の王だ、東京特許許可局長。"
    assert to_katakana(sentence * 200, reader) == to_katakana(sentence, reader) * 200


def test_default_reader_is_unidic():
    from pipeline.config import READERS as CONFIGURED

    assert CONFIGURED[0] == "unidic"
    assert to_katakana("王様は、人を殺します。") == "オウサマハ、ヒトヲコロシマス。"


@pytest.mark.parametrize("reader", READERS)
def test_kinship_words_with_an_honorific_read_as_spoken(reader):
    # UniDic-lite splits お母さん into お/母/さん and reads オハハサン.
    for text, kana in [
        ("お母さん", "オカアサン"),
        ("お父さん", "オトウサン"),
        ("兄さん、姉さん", "ニイサン、ネエサン"),
        ("お祖母さん", "オバアサン"),
        ("お父様のご意見", "オトウサマノゴイケン"),
        ("母ちゃん", "カアチャン"),
    ]:
        assert to_katakana(text, reader) == kana, text
    # A kanji before it makes another word, left to the reader; the author's ruby still wins.
    assert to_katakana("叔母さん", reader) == "オバサン"
    assert to_katakana("母上", reader) == "ハハウエ"
    assert to_katakana("｜母さん《おっかさん》", reader) == "オッカサン"


_KANWA_PROBE = """
import json, sys
from pipeline.kana import get_reader
from pykakasi.kanji import Kanwa
text = sys.stdin.read()
r = get_reader("pykakasi")
print(json.dumps({"kana": [r.read(line) for line in text.splitlines()],
                  "indexed": type(Kanwa._shared_state["_jisyo_table"]).__name__ == "KanwaTable"}))
"""


def test_pykakasi_reads_the_same_from_its_indexed_dictionary(tmp_path, shared_corpus):
    """The indexed copy of pykakasi's dictionary (pipeline.kanwacache) gives the readings its
    own pickle gives: built on first use, read from on the next, rebuilt when damaged, and
    pykakasi's own file where no copy can be written."""
    import json
    import os
    import subprocess
    import sys

    raw = (shared_corpus / "1018_ruby_2213.txt").read_bytes().decode("cp932")
    lines = [ln for ln in raw.splitlines() if ln.startswith("「")][:300]
    text = "\n".join(lines)
    repo = Path(__file__).resolve().parents[1]

    def probe(cache: str) -> dict:
        env = {**os.environ, "PYTHONPATH": str(repo), "NOCPIPE_CACHE": cache}
        out = subprocess.run(
            [sys.executable, "-c", _KANWA_PROBE],
            input=text,
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=repo,
        )
        return json.loads(out.stdout)

    cache = tmp_path / "cache"
    (tmp_path / "a-file").write_text("not a folder")
    built = probe(str(cache))
    copies = list(cache.glob("pykakasi-*-kanwa.idx"))
    assert built["indexed"] and len(copies) == 1
    again = probe(str(cache))
    plain = probe(str(tmp_path / "a-file" / "cache"))  # cannot be created: pykakasi's own file
    assert again["indexed"] and not plain["indexed"]
    assert built["kana"] == again["kana"] == plain["kana"]
    assert sum(len(k) for k in plain["kana"]) > 3000
    copies[0].write_bytes(copies[0].read_bytes()[:5000])  # a damaged copy is written again
    assert probe(str(cache))["kana"] == plain["kana"]
    assert copies[0].stat().st_size > 5000


# ---------------------------------------------------------------- spoken readings

# Everyday words as a speaker says them, inside a dialogue line (pipeline/spoken.py). Words
# read two ways in speech (昨夜 サクヤ/ユウベ, 皆 ミナ/ミンナ, 紅葉, 何時) are left out.
SPOKEN_LINES = [
    ("「今日は暑いね」", "「キョウハアツイネ」"),
    ("「昨日、見たよ」", "「キノウ、ミタヨ」"),
    ("「明日、また来る」", "「アシタ、マタクル」"),
    ("「明日は雨だって」", "「アシタハアメダッテ」"),
    ("「一人で行くの？」", "「ヒトリデイクノ？」"),
    ("「二人とも来て」", "「フタリトモキテ」"),
    ("「もう大人だもの」", "「モウオトナダモノ」"),
    ("「何を言ってるの？」", "「ナニヲイッテルノ？」"),
    ("「何でもないよ」", "「ナンデモナイヨ」"),
    ("「何だって？」", "「ナンダッテ？」"),
    ("「何が欲しい？」", "「ナニガホシイ？」"),
    ("「今、行くよ」", "「イマ、イクヨ」"),
    ("「私が悪かった」", "「ワタシガワルカッタ」"),
    ("「私達の家だ」", "「ワタシタチノイエダ」"),
    ("「貴方のせいよ」", "「アナタノセイヨ」"),
    ("「今朝は寒かった」", "「ケサハサムカッタ」"),
    ("「今年こそ勝つ」", "「コトシコソカツ」"),
    ("「上手だね」", "「ジョウズダネ」"),
    ("「上手は無理」", "「ジョウズハムリ」"),
    ("「下手でごめん」", "「ヘタデゴメン」"),
    ("「部屋を出て」", "「ヘヤヲデテ」"),
    ("「眼鏡を貸して」", "「メガネヲカシテ」"),
    ("「果物が好き」", "「クダモノガスキ」"),
    ("「時計を見て」", "「トケイヲミテ」"),
    ("「今夜は寒い」", "「コンヤハサムイ」"),
    ("「明後日に帰る」", "「アサッテニカエル」"),
    ("「一昨日も来たよ」", "「オトトイモキタヨ」"),
    ("「今晩は泊まって」", "「コンバンハトマッテ」"),
    ("「毎日、楽しい」", "「マイニチ、タノシイ」"),
    ("「友達だろう？」", "「トモダチダロウ？」"),
    ("「先生、待って」", "「センセイ、マッテ」"),
    ("「大丈夫だよ」", "「ダイジョウブダヨ」"),
    ("「本当に？」", "「ホントウニ？」"),
    ("「一緒に行こう」", "「イッショニイコウ」"),
    ("「誰だ？」", "「ダレダ？」"),
    ("「怪我はない？」", "「ケガハナイ？」"),
    ("「迷子になった」", "「マイゴニナッタ」"),
    ("「息子が世話になった」", "「ムスコガセワニナッタ」"),
    ("「素人だな」", "「シロウトダナ」"),
    ("「景色がいい」", "「ケシキガイイ」"),
    ("「お土産を買った」", "「オミヤゲヲカッタ」"),
    ("「風邪をひいた」", "「カゼヲヒイタ」"),
    ("「真似しないで」", "「マネシナイデ」"),
    ("「仕方ない」", "「シカタナイ」"),
    ("「一杯飲もう」", "「イッパイノモウ」"),
    ("「今日中に頼む」", "「キョウジュウニタノム」"),
    ("「一日中寝てた」", "「イチニチジュウネテタ」"),
    ("「自分でやる」", "「ジブンデヤル」"),
    ("「お前が悪い」", "「オマエガワルイ」"),
    ("「今度こそ」", "「コンドコソ」"),
    ("「明日香ちゃん」", "「アスカチャン」"),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("line,expected", SPOKEN_LINES)
def test_everyday_words_read_as_spoken(reader, line, expected):
    assert read_side(line, reader) == expected


def test_the_spoken_list_is_long_enough_and_covers_the_table():
    from pipeline.spoken import SPOKEN

    assert len(SPOKEN_LINES) >= 40
    assert all(any(word in line for line, _ in SPOKEN_LINES) for word in SPOKEN)


@pytest.mark.parametrize("reader", READERS)
def test_the_authors_ruby_and_the_works_memory_still_win_over_spoken_readings(reader):
    from pipeline.rubymemory import RubyMemory

    assert read_side("「明日《あす》は晴れる」", reader) == "「アスハハレル」"
    assert read_side("「｜私《わたくし》が参ります」", reader) == "「ワタクシガマイリマス」"
    assert read_side("「今日《こんにち》の話」", reader) == "「コンニチノハナシ」"
    memory = RubyMemory.from_lines(["明日《みょうにち》伺います"])
    assert read_side("「明日、また」", reader, memory) == "「ミョウニチ、マタ」"
