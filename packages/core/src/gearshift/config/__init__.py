"""Configuration: the `gearshift.toml` schema, finding and reading the file, and errors that name
the file, line and key of every problem; the built-in model ladder, price lookup, and the data
folder for state the user named no file for.

The public names (`GearshiftConfig`, `load_config`, ...) are exported from `gearshift`.
"""

__all__: list[str] = []
