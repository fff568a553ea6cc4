"""Arabic numbers read out in katakana: 3回 -> サンカイ, 1945年 -> センキュウヒャクヨンジュウゴネン.

The readers (pykakasi, UniDic) leave digits as digits, so numbers are read here,
before the reader sees the text. A counter right after the number is read here
too when it changes the number's sound (1本 イッポン, 3本 サンボン, 4時 ヨジ);
every other counter is left to the reader.
"""

from __future__ import annotations

import re

_ONES = ["", "イチ", "ニ", "サン", "ヨン", "ゴ", "ロク", "ナナ", "ハチ", "キュウ"]
_DIGIT_ALONE = ["ゼロ", "イチ", "ニ", "サン", "ヨン", "ゴ", "ロク", "ナナ", "ハチ", "キュウ"]
_HUNDREDS = {1: "ヒャク", 3: "サンビャク", 6: "ロッピャク", 8: "ハッピャク"}
_THOUSANDS = {1: "セン", 3: "サンゼン", 8: "ハッセン"}
# (unit value, reading, whether 1/8/10 before it geminate)
_BIG_UNITS = [(10**12, "チョウ", True), (10**8, "オク", False), (10**4, "マン", False)]

# Counters whose first sound changes after the number. Value: reading after most
# digits, after 3, after 1/6/8/10 (geminated "ッ" forms).
_COUNTERS = {
    "本": ("ホン", "ボン", "ポン"),
    "匹": ("ヒキ", "ビキ", "ピキ"),
    "杯": ("ハイ", "バイ", "パイ"),
    "分": ("フン", "プン", "プン"),
    "泊": ("ハク", "パク", "パク"),
    "発": ("ハツ", "パツ", "パツ"),
    "回": ("カイ", "カイ", "カイ"),
    "個": ("コ", "コ", "コ"),
    "歳": ("サイ", "サイ", "サイ"),
    "才": ("サイ", "サイ", "サイ"),
    "階": ("カイ", "ガイ", "カイ"),
    "軒": ("ケン", "ゲン", "ケン"),
    "冊": ("サツ", "サツ", "サツ"),
    "件": ("ケン", "ケン", "ケン"),
    "週": ("シュウ", "シュウ", "シュウ"),
    "頭": ("トウ", "トウ", "トウ"),
    "着": ("チャク", "チャク", "チャク"),
    "通": ("ツウ", "ツウ", "ツウ"),
}
# Counters after which 4 is ヨ and 7/9 may change.
_YO_COUNTERS = {"年": "ネン", "人": "ニン", "円": "エン", "時": "ジ", "月": "ガツ"}
_SMALL_PEOPLE = {1: "ヒトリ", 2: "フタリ"}
_TSU = {
    1: "ヒトツ",
    2: "フタツ",
    3: "ミッツ",
    4: "ヨッツ",
    5: "イツツ",
    6: "ムッツ",
    7: "ナナツ",
    8: "ヤッツ",
    9: "ココノツ",
}
_DAYS = {
    1: "イチニチ",
    2: "フツカ",
    3: "ミッカ",
    4: "ヨッカ",
    5: "イツカ",
    6: "ムイカ",
    7: "ナノカ",
    8: "ヨウカ",
    9: "ココノカ",
    10: "トオカ",
    14: "ジュウヨッカ",
    20: "ハツカ",
    24: "ニジュウヨッカ",
}

NUMBER_RE = re.compile(r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)([万億兆])?")
_MULTIPLIERS = {"万": 10**4, "億": 10**8, "兆": 10**12}
_COUNTER_CHARS = "".join(_COUNTERS) + "".join(_YO_COUNTERS) + "つ日"


def _under_10000(n: int) -> str:
    out = []
    th, n = divmod(n, 1000)
    if th:
        out.append(_THOUSANDS.get(th, _ONES[th] + "セン"))
    hu, n = divmod(n, 100)
    if hu:
        out.append(_HUNDREDS.get(hu, _ONES[hu] + "ヒャク"))
    te, n = divmod(n, 10)
    if te:
        out.append(("" if te == 1 else _ONES[te]) + "ジュウ")
    if n:
        out.append(_ONES[n])
    return "".join(out)


def read_int(n: int) -> str:
    """Read a non-negative integer the way it is said: 1945 -> センキュウヒャクヨンジュウゴ."""
    if n == 0:
        return "ゼロ"
    if n >= 10**16:
        return "".join(_DIGIT_ALONE[int(d)] for d in str(n))
    out = []
    for unit, name, special in _BIG_UNITS:
        q, n = divmod(n, unit)
        if q:
            head = _under_10000(q)
            if special:  # 1兆 イッチョウ, 8兆 ハッチョウ, 10兆 ジュッチョウ
                head = _geminate(head) if head.endswith(("イチ", "ハチ", "ジュウ")) else head
            out.append(head + name)
    if n:
        out.append(_under_10000(n))
    return "".join(out)


def _geminate(reading: str) -> str:
    for end, gem in (("イチ", "イッ"), ("ロク", "ロッ"), ("ハチ", "ハッ"), ("ジュウ", "ジュッ"), ("ヒャク", "ヒャッ")):
        if reading.endswith(end):
            return reading[: -len(end)] + gem
    return reading


def read_number(digits: str, counter: str = "") -> tuple[str, bool]:
    """Read one number token; return (reading, counter_consumed)."""
    digits = digits.replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return read_number(whole)[0] + "テン" + "".join(_DIGIT_ALONE[int(d)] for d in frac), False
    if len(digits) > 1 and digits.startswith("0"):
        return "".join(_DIGIT_ALONE[int(d)] for d in digits), False
    n = int(digits)
    base = read_int(n)
    if not counter:
        return base, False
    if counter == "人" and n in _SMALL_PEOPLE:
        return _SMALL_PEOPLE[n], True
    if counter == "つ" and n in _TSU:
        return _TSU[n], True
    if counter == "日" and n in _DAYS:
        return _DAYS[n], True
    if counter in _YO_COUNTERS:
        if base.endswith("ヨン"):
            base = base[:-1]
        if counter in ("時", "月") and base.endswith("ナナ"):
            base = base[:-2] + "シチ"
        if counter in ("時", "月") and base.endswith("キュウ"):
            base = base[:-3] + "ク"
        if counter == "月" and base.endswith("ヨ"):
            base = base[:-1] + "シ"
        return base + _YO_COUNTERS[counter], True
    if counter in _COUNTERS:
        plain, after3, gem = _COUNTERS[counter]
        last = n % 10
        if last in (1, 6, 8) or (last == 0 and n % 100 in (10, 0)):
            return _geminate(base) + gem, True
        if last == 3:
            return base + after3, True
        if counter == "分" and last == 4:
            return base + "プン", True
        return base + plain, True
    return base, False


def read_numbers(text: str) -> str:
    """Replace every Arabic number in `text` (ASCII digits) by its katakana reading."""
    if not any(c.isdigit() for c in text):
        return text
    out = []
    pos = 0
    for m in NUMBER_RE.finditer(text):
        out.append(text[pos : m.start()])
        nxt = text[m.end() : m.end() + 1]
        counter = nxt if nxt and nxt in _COUNTER_CHARS else ""
        digits = m.group(1)
        if m.group(2) and "." not in digits:  # 3万 -> 30000, read as one number
            digits = str(int(digits.replace(",", "")) * _MULTIPLIERS[m.group(2)])
        elif m.group(2):
            counter = ""
        reading, consumed = read_number(digits, counter)
        if m.group(2) and "." in m.group(1):
            reading += {"万": "マン", "億": "オク", "兆": "チョウ"}[m.group(2)]
        out.append(reading)
        pos = m.end() + (1 if consumed else 0)
    out.append(text[pos:])
    return "".join(out)
