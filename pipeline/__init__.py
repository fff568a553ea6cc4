"""nocpipe: Japanese web novels -> katakana dialogue corpus -> seq2seq chatbot.

`pipeline` holds the shared machinery (config, errors, records, shards, kana,
parsers, http, models); `stages` holds one module per command.
"""

__version__ = "0.1.0"
