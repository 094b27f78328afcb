"""Request features: the signals policies route on, their cue vocabulary, token estimates, and the
step context read from a run's messages.

The public names (`Signals`, `extract_signals`, ...) are exported from `gearshift`.
"""

__all__: list[str] = []
