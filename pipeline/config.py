"""The one place for defaults and for the settings a user chooses once (docs/settings.md).

Settings (`Settings`, read by `load_settings()`): the data folder, the default model name,
the contact and the politeness of scrape. Each comes from, first to last: the command line,
the environment (NOCPIPE_DATA, NOCPIPE_CONTACT, ...), the settings file (`nocpipe.toml` in
the working folder, or the file NOCPIPE_CONFIG names), the defaults here. The data folder
moves every data folder at once (data/raw, data/processed, data/models)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The original experiment's limit on a side's length, in katakana characters.
DEFAULT_MAX_LEN = 50
#: `nocpipe train --arch` when none is given: the best validation bits/char at equal time and
#: width on the bundled corpus (docs/models.md); `seed` stays the 2017 network.
DEFAULT_ARCH = "retrieval"
#: `nocpipe train --arch` names: the generative networks (pipeline.models builds them) and the
#: retrieval chatbot (pipeline.retrieval), which ranks the corpus's own replies.
ARCHES = ("transformer", "attention", "seed", "simple", "dense-attention", "retrieval")
#: `--units` when none is given: the width of every architecture.
DEFAULT_UNITS = 128
#: train/validation/test shares of works, by a stable hash of work_id.
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
#: Pairs per Parquet shard before a new shard is started.
SHARD_TARGET_PAIRS = 50_000
#: Katakana readers, the default first: UniDic reads better (README, "Readings").
READERS = ("unidic", "pykakasi")
#: Largest input file ingest reads (MB): a bigger one is skipped, so memory stays bounded.
MAX_INPUT_MB = 64
SOURCES = ("nocturne", "narou", "aozora", "text")


def data_root() -> Path:
    return Path(load_settings().data)


def default_raw_dir() -> Path:
    return data_root() / "raw"


def default_processed_dir() -> Path:
    return data_root() / "processed"


def default_pairs_dir() -> Path:
    return default_processed_dir() / "pairs"


def default_models_dir() -> Path:
    return data_root() / "models"


@dataclass(frozen=True)
class SplitConfig:
    """Shares of works in train/validation/test; parsed from '80,10,10'."""

    train: float = DEFAULT_SPLIT[0]
    validation: float = DEFAULT_SPLIT[1]
    test: float = DEFAULT_SPLIT[2]

    @classmethod
    def parse(cls, text: str) -> "SplitConfig":
        import math

        from .errors import UsageError

        try:
            parts = [float(p) for p in text.replace("/", ",").split(",")]
        except ValueError:
            parts = []
        # nan passes every comparison, and 1e308 + 1e308 overflows to inf: shares of nothing.
        total = sum(parts) if all(math.isfinite(p) for p in parts) else math.nan
        if len(parts) != 3 or any(p < 0 for p in parts) or not (math.isfinite(total) and total > 0):
            raise UsageError(f"--split takes three finite shares, 0 or more and not all 0, like 80,10,10; not {text!r}")
        return cls(*(p / total for p in parts))

    def as_list(self) -> list[float]:
        return [round(self.train, 6), round(self.validation, 6), round(self.test, 6)]


@dataclass(frozen=True)
class NearDupConfig:
    """Near-copy works: MinHash over character shingles of a work's katakana dialogue.

    Chosen on the bundled 61 Aozora works (`benchmarks/extract.py --neardup-only`; the table
    is in docs/corpus.md): at 5-character shingles the most similar unrelated works have a
    Jaccard similarity of 0.069 (MinHash estimate 0.094), while copies with 10 % of their
    lines changed and 5 % removed score at least 0.817 (estimate 0.797), and copies with
    half their lines changed still 0.564. A threshold of 0.5 sits in that gap.
    """

    shingle: int = 5  # characters per shingle
    num_perm: int = 128  # MinHash permutations (signature length)
    threshold: float = 0.5  # estimated Jaccard similarity that makes two works near-copies
    min_shingles: int = 50  # works with fewer shingles are never grouped (too little text)
    seed: int = 1


@dataclass(frozen=True)
class ServeLimits:
    """What `nocpipe serve` accepts in one request, and how it batches model calls. Replies per
    input are bounded by pipeline.decoding.MAX_NUM, as on the command line."""

    #: Characters of input text (the model reads at most max_len katakana of it anyway).
    max_text: int = 200
    #: Bytes of a request body: anything longer is refused before it is parsed.
    max_body: int = 8192
    max_beam: int = 16
    max_temperature: float = 5.0
    #: Replies answered by one model call at most.
    max_batch: int = 32
    #: After a batch of several, how long the next waits for the rest of its round (seconds).
    batch_window: float = 0.002
    #: Requests waiting for the model before new ones are turned away with 503.
    max_pending: int = 256
    #: Seconds a client has to send a whole request (headers and body) once it has begun.
    read_timeout: float = 5.0
    #: Seconds an idle keep-alive connection stays open.
    keep_alive: int = 5


#: Upper bounds of serve's --max-batch and --max-pending: a batch is one model call's rows,
#: and every queued request holds a connection and waits behind the ones before it.
SERVE_MAX_BATCH = 256
SERVE_MAX_PENDING = 4096

SERVE_HOST = "127.0.0.1"
SERVE_PORT = 8000


# ---------------------------------------------------------------- settings

SETTINGS_FILE = "nocpipe.toml"
SETTINGS_ENV = "NOCPIPE_CONFIG"
#: Longest settings file read: a settings file is a few lines.
MAX_SETTINGS_BYTES = 64 * 1024


@dataclass(frozen=True)
class SettingSpec:
    key: str
    env: str
    kind: type
    help: str


SETTING_SPECS = (
    SettingSpec("data", "NOCPIPE_DATA", str, "the data folder: raw/, processed/ and models/ inside it"),
    SettingSpec("model", "NOCPIPE_MODEL", str, "the model name --name takes when none is given"),
    SettingSpec("contact", "NOCPIPE_CONTACT", str, "scrape: e-mail or URL put in the User-Agent"),
    SettingSpec("delay", "NOCPIPE_DELAY", float, "scrape: seconds between requests"),
    SettingSpec("timeout", "NOCPIPE_TIMEOUT", float, "scrape: seconds to connect / between bytes"),
    SettingSpec("retries", "NOCPIPE_RETRIES", int, "scrape: retries of a failed request"),
    SettingSpec("backoff", "NOCPIPE_BACKOFF", float, "scrape: seconds before the first retry"),
)
SPECS = {s.key: s for s in SETTING_SPECS}
#: Bounds of the numeric settings (inclusive; timeout must be above its lower bound).
SETTING_BOUNDS = {"delay": (0.0, 3600.0), "timeout": (0.0, 3600.0), "retries": (0, 100), "backoff": (0.0, 3600.0)}


@dataclass(frozen=True)
class Settings:
    """What is in force; `origins` says where each value came from: "default", "file"
    (with its line: "file:3") or "env"."""

    data: str = "data"
    model: str = "default"
    contact: str | None = None
    delay: float = 1.0
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 2.0
    file: Path | None = None
    origins: dict[str, str] = field(default_factory=dict, compare=False)

    def origin(self, key: str) -> str:
        return self.origins.get(key, "default")

    def validate(self) -> None:
        """Every value's bounds; the error names where the value came from."""
        for key, (low, high) in SETTING_BOUNDS.items():
            value = getattr(self, key)
            if not math.isfinite(value) or not low <= value <= high or (key == "timeout" and value == low):
                span = f"more than {low:g} and at most {high:g}" if key == "timeout" else f"{low:g} to {high:g}"
                raise self._error(key, f"must be {span}, not {value!r}")
        name = self.model
        if not name or "/" in name or "\\" in name or name.startswith(".") or len(name.encode("utf-8")) > 255:
            raise self._error("model", f"must be a plain folder name of at most 255 bytes, not {name!r}")
        if not self.data:
            raise self._error("data", "must name a folder, not be empty")
        if self.contact is not None and (
            not self.contact.strip() or not self.contact.isascii() or not self.contact.isprintable()
        ):
            raise self._error("contact", "must be printable ASCII, such as an e-mail address or a URL")

    def _error(self, key: str, what: str) -> Exception:
        from .errors import UsageError

        return UsageError(f"{where_from(self, key)}: {key} {what}")


def where_from(s: Settings, key: str) -> str:
    """Where a setting's value came from, for messages and `nocpipe config`."""
    origin = s.origin(key)
    if origin == "env":
        return f"{SPECS[key].env} in the environment"
    if origin.startswith("file"):
        line = origin.partition(":")[2]
        return f"{s.file}" + (f", line {line}" if line else "")
    return "the default"


def settings_file() -> Path | None:
    """The settings file in force: NOCPIPE_CONFIG's (which must exist), else ./nocpipe.toml
    when there is one, else None."""
    from .errors import UsageError

    named = os.environ.get(SETTINGS_ENV, "")
    if named:
        if not Path(named).is_file():
            raise UsageError(f"{SETTINGS_ENV} names {named}, which is not a file; create it or unset {SETTINGS_ENV}")
        return Path(named)
    return Path(SETTINGS_FILE) if Path(SETTINGS_FILE).is_file() else None


def load_settings() -> Settings:
    """The settings in force: environment over file over defaults (the command line wins over
    all of them in the commands themselves). An empty environment variable counts as unset."""
    path = settings_file()
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        for key, (value, line) in _read_file(path).items():
            values[key], origins[key] = value, f"file:{line}" if line else "file"
        if "data" in values and not Path(str(values["data"])).is_absolute():
            values["data"] = str(path.parent / str(values["data"])) if str(path.parent) != "." else values["data"]
    for spec in SETTING_SPECS:
        raw = os.environ.get(spec.env, "")
        if raw:
            values[spec.key], origins[spec.key] = _from_env(spec, raw), "env"
    s = Settings(**values, file=path, origins=origins)
    s.validate()
    return s


def _from_env(spec: SettingSpec, raw: str) -> object:
    from .errors import UsageError

    try:
        return spec.kind(raw)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(spec.kind, "text")
        raise UsageError(f"{spec.env}={raw!r} in the environment: {spec.key} must be {kind}") from None


def _read_file(path: Path) -> dict[str, tuple[object, int | None]]:
    """The file's settings, each with its line; a UsageError naming the file, the line and
    the key for anything that is not TOML, not a known key or not of the key's type."""
    import tomllib

    from .errors import UsageError

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_SETTINGS_BYTES + 1)
    except OSError as exc:
        from .errors import describe_os_error

        raise UsageError(f"cannot read the settings file: {describe_os_error(exc)}") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise UsageError(f"{path}: a settings file is at most {MAX_SETTINGS_BYTES // 1024} KB; is it the right file?")
    try:
        text = data.decode("utf-8")
        table = tomllib.loads(text)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        at_line = f", line {m.group(1)}" if m else ""
        reason = re.sub(r"\s*\(at line \d+, column \d+\)|\s*\(at end of document\)", "", str(exc))
        raise UsageError(f"{path}{at_line}: not valid TOML ({reason}); fix that line") from None
    out: dict[str, tuple[object, int | None]] = {}
    for key, value in table.items():
        line = _line_of(text, key)
        at = f"{path}" + (f", line {line}" if line else "")
        spec = SPECS.get(key)
        if spec is None:
            raise UsageError(f"{at}: unknown key {key!r}; the keys are {', '.join(SPECS)}")
        ok = isinstance(value, spec.kind) and not isinstance(value, bool)
        if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            kind = {int: "a whole number", float: "a number", str: "a quoted string"}[spec.kind]
            raise UsageError(f"{at}: {key} must be {kind}, not {value!r}")
        out[key] = (value, line)
    return out


def _line_of(text: str, key: str) -> int | None:
    """The line that sets top-level `key` (or opens a table of that name): tomllib gives
    values, not where they stand."""
    pattern = re.compile(rf"""^\s*(?:["']?{re.escape(key)}["']?\s*[=.]|\[+\s*["']?{re.escape(key)}["']?\s*[\].])""")
    for n, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return n
    return None
