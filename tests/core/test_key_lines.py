"""Finding the line a config key is written on, for errors that name it."""

from __future__ import annotations

from gearshift.config._key_lines import key_lines, line_of

TEXT = '''# gearshift.toml
[providers.local]
kind = "openai"
base_url = "http://localhost:11434/v1"

[[models]]
id = "small"
prices = { input = 0.1, output = 0.4 }

[[models]]
id = "large"
"tier" = 2
notes = """
tier = 9
"""
context_window = 128000

[routing]
policy = "rules"
scorer.code_weight = 0.5

[[routing.rules]]
model = "small"

[[routing.rules]]
tier = 2
[routing.rules.when]
step = ["plan"]
'''


def test_tables_and_keys_are_found_on_their_lines() -> None:
    lines = key_lines(TEXT)
    assert lines[("providers", "local")] == 2
    assert lines[("providers", "local", "base_url")] == 4
    assert lines[("models", 0, "id")] == 7
    assert lines[("models", 1)] == 10
    assert lines[("models", 1, "tier")] == 12  # a quoted key
    assert lines[("models", 1, "context_window")] == 16  # after a multi-line string
    assert lines[("routing", "scorer", "code_weight")] == 20  # a dotted key
    assert lines[("routing", "rules", 1, "tier")] == 26
    assert lines[("routing", "rules", 1, "when", "step")] == 28  # a sub-table of the second rule


def test_a_key_the_text_does_not_write_takes_the_line_of_what_holds_it() -> None:
    lines = key_lines(TEXT)
    assert line_of(lines, ("models", 0, "prices", "output")) == 8  # inside an inline table
    assert line_of(lines, ("models", 1, "provider")) == 10  # missing: the table that lacks it
    assert line_of(lines, ("models", 1, "tier")) == 12
    assert line_of(lines, ("log", "path")) is None  # nothing of it is written


def test_text_inside_a_multi_line_string_is_not_a_key() -> None:
    assert key_lines(TEXT)[("models", 1, "tier")] == 12  # not line 14, inside the string
