"""`nocpipe config`: the settings in force and where each one came from."""

from __future__ import annotations

from .. import config
from ..reporter import Reporter
from . import app


@app.command("config")
def show_config() -> None:
    """Show the settings in force and where each came from: the default, the settings file
    (nocpipe.toml in the working folder, or the file NOCPIPE_CONFIG names) or the
    environment (NOCPIPE_DATA, NOCPIPE_CONTACT, ...). An option on the command line wins
    over all of them. A bad settings file is one Error line naming its line and key.

    \b
    Example:  nocpipe config
    Example:  NOCPIPE_CONFIG=~/nocpipe.toml nocpipe config
    """
    say = Reporter()
    s = config.load_settings()
    say.result(f"settings file: {s.file if s.file else f'none ({config.SETTINGS_FILE} not found here)'}")
    width = max(len(spec.key) for spec in config.SETTING_SPECS)
    for spec in config.SETTING_SPECS:
        value = getattr(s, spec.key)
        shown = "(none)" if value is None else repr(value)
        origin = s.origin(spec.key)
        if origin == "env":
            origin = f"env ({spec.env})"
        elif origin.startswith("file"):
            origin = f"file ({config.where_from(s, spec.key)})"
        say.result(f"{spec.key:<{width}} = {shown:<24} {origin}")
