"""What the config tables of artifact-backed policies share: a `path`, one operating target at most.

`[routing.learned]` (`LearnedConfig`) and `[routing.escalation]` (`gearshift.escalation.EscalationConfig`)
each name a JSON artifact and may choose the operating point it runs at. Both validate the same way:
unknown keys list the accepted ones, and every `ConfigError` names the file and the dotted key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .._errors import ConfigError
from ..config._config_errors import problem_wording

__all__ = ["ArtifactSettings"]


class ArtifactSettings(BaseModel):
    """Settings naming an artifact `path`; subclasses list their mutually exclusive `targets`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    targets: ClassVar[tuple[str, ...]] = ()
    accepted_by: ClassVar[str] = "the policy"

    @model_validator(mode="after")
    def _one_target(self) -> ArtifactSettings:
        given = [name for name in self.targets if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"set at most one of {', '.join(self.targets)}; got {' and '.join(given)}")
        return self

    @classmethod
    def validate_table(cls, data: Mapping[str, Any], *, source: str, key: str) -> Any:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            path = "".join(f".{part}" for part in err["loc"] if part != "[key]")
            message = problem_wording(err)
            if err["type"] == "extra_forbidden":
                message = f"unknown setting; {cls.accepted_by} accepts: {', '.join(cls.model_fields)}"
            raise ConfigError(message, source=source, key=f"{key}{path}") from None

    def artifact_path(self, source: str) -> Path:
        """`path`, resolved against the folder of the config file `source` (when it is a file)."""
        path = Path(self.path).expanduser()
        if path.is_absolute() or source.startswith("<"):
            return path
        return Path(source).parent / path
