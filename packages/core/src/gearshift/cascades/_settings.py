"""`[routing.cascade]`: which quality gates check cheaper models' answers, and how they combine.

```toml
[routing.cascade]
gates = ["heuristic", "learned-judge"]   # run in this order; put the cheap ones first
mode = "all"                             # every gate must pass ("any": one is enough)
final_answer = "number"                  # heuristic: also require a final number ("choice": a letter)
check_arithmetic = true                  # heuristic: also reject a wrong equation ("15 + 25 = 45")
judge_model = "gpt-5-mini"               # llm-judge: a registry id
judge_threshold = 0.7                    # llm-judge: accept from 7/10
learned_judge_path = "judge.json"        # learned-judge: a file AnswerJudge.save wrote
```

How many hand-overs one call may take is the router's `routing.max_escalations`, shared with
self-escalation, so it is not repeated here.

`CascadeConfig` validates the table (errors name the key, `routing.cascade.judge_model`, and why);
`build_cascade` turns it into a `Cascade`, checking the judge model against the registry and loading
the learned judge's file (relative paths start at the config file's folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._errors import ConfigError
from .._models import ModelRegistry
from ..config._config_errors import problem_wording
from ._answer_judge import AnswerJudge, LearnedJudgeGate
from ._cascade import Cascade
from ._consistency import SelfConsistencyGate
from ._gate import QualityGate
from ._heuristic import DEFAULT_CHECKS, FinalAnswerCheck, HeuristicGate, check_arithmetic
from ._judge import LLMJudgeGate

__all__ = ["CascadeConfig", "GateName", "build_cascade"]

GateName = Literal["heuristic", "llm-judge", "learned-judge", "self-consistency"]
"""The built-in gates a config can name."""

_KEY = "routing.cascade"


class CascadeConfig(BaseModel):
    """The `[routing.cascade]` table: the gates, how they combine, and each gate's settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gates: tuple[GateName, ...] = Field(
        default=("heuristic",),
        description="The gates, run in this order: heuristic, llm-judge, learned-judge, self-consistency.",
    )
    mode: Literal["all", "any"] = Field(
        default="all", description="`all`: every gate must accept; `any`: one accepting gate is enough."
    )
    combine_prior: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Weight of the router's pre-call estimate against the gates' confidence (0: gates only).",
    )
    combined_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="With combine_prior > 0: escalate when the blended estimate falls below this.",
    )
    final_answer: Literal["number", "choice"] | None = Field(
        default=None,
        description="Heuristic gate: also require a marked final number (math) or choice letter.",
    )
    check_arithmetic: bool = Field(
        default=False, description="Heuristic gate: also reject answers showing a wrong equation (math)."
    )
    judge_model: str | None = Field(
        default=None, description="LLM judge: the registry id of the judge model."
    )
    judge_threshold: float = Field(
        default=0.7, ge=0, le=1, description="LLM judge: the lowest accepted grade, as a share of 10."
    )
    judge_on_failure: Literal["reject", "accept"] = Field(
        default="reject", description="LLM judge: what a judge that gives no usable grade means."
    )
    learned_judge_path: Path | None = Field(
        default=None, description="Learned judge: the JSON file `AnswerJudge.save` wrote."
    )
    learned_judge_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Learned judge: the lowest accepted P(answer is good)."
    )
    consistency_samples: int = Field(
        default=2, ge=2, description="Self-consistency: answers compared, the first one included."
    )

    @field_validator("gates")
    @classmethod
    def _check_gates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one gate: {', '.join(get_args(GateName))}")
        repeated = sorted({g for g in value if value.count(g) > 1})
        if repeated:
            raise ValueError(f"each gate may be named once; repeated: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _check_needs(self) -> CascadeConfig:
        if "llm-judge" in self.gates and not self.judge_model:
            raise ValueError('judge_model: the llm-judge gate needs judge_model = "<a registry model id>"')
        if "learned-judge" in self.gates and self.learned_judge_path is None:
            raise ValueError("learned_judge_path: the learned-judge gate needs the path of a saved judge")
        return self

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any], *, source: str = "<python>", key: str = _KEY
    ) -> CascadeConfig:
        """Validate user-written settings; a `ConfigError` names the offending key and why."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
            message = problem_wording(err)
            if not loc and ": " in message:  # a model-level check names its key before the colon
                field, message = message.split(": ", 1)
                loc = [field]
            if err["type"] == "extra_forbidden":
                message = f"unknown setting; [routing.cascade] accepts: {', '.join(cls.model_fields)}"
            if err["type"] == "literal_error" and loc and loc[0] == "gates":
                message = f"unknown gate {err['input']!r}; choose from {', '.join(get_args(GateName))}"
            raise ConfigError(message, source=source, key=".".join([key, *loc])) from None


def _base_dir(source: str) -> Path | None:
    path = Path(source)
    return path.parent if path.is_file() else None


def build_cascade(
    config: CascadeConfig | Mapping[str, Any],
    *,
    registry: ModelRegistry,
    source: str = "<python>",
    base_dir: str | Path | None = None,
) -> Cascade:
    """The `Cascade` a `[routing.cascade]` table describes.

    The judge model must be in `registry`; one that does not support JSON output is asked for its
    JSON grade in the prompt only (no `response_schema`). A relative `learned_judge_path` starts at
    `base_dir`, by default the folder of the config file `source` names. Reads the learned judge's
    file, so call it while building the router, not on the event loop. Raises `ConfigError` naming
    the key.
    """
    if not isinstance(config, CascadeConfig):
        config = CascadeConfig.from_config(config, source=source)
    gates: list[QualityGate] = []
    for name in config.gates:
        if name == "heuristic":
            checks = DEFAULT_CHECKS
            if config.final_answer is not None:
                checks = (*checks, FinalAnswerCheck(config.final_answer))
            if config.check_arithmetic:
                checks = (*checks, check_arithmetic)
            gates.append(HeuristicGate(checks))
        elif name == "llm-judge":
            assert config.judge_model is not None  # the model validator saw to it
            if config.judge_model not in registry:
                raise ConfigError(
                    f"unknown model id '{config.judge_model}'; the registry has: {', '.join(registry.ids)}",
                    source=source,
                    key=f"{_KEY}.judge_model",
                )
            gates.append(
                LLMJudgeGate(
                    config.judge_model,
                    threshold=config.judge_threshold,
                    on_failure=config.judge_on_failure,
                    # A judge that cannot be asked for JSON output is asked in words only.
                    structured=registry[config.judge_model].supports_json,
                )
            )
        elif name == "learned-judge":
            assert config.learned_judge_path is not None
            path = config.learned_judge_path.expanduser()
            anchor = Path(base_dir) if base_dir is not None else _base_dir(source)
            if not path.is_absolute() and anchor is not None:
                path = anchor / path
            try:
                judge = AnswerJudge.load(path)
            except ConfigError as exc:
                raise ConfigError(str(exc), source=source, key=f"{_KEY}.learned_judge_path") from None
            gates.append(LearnedJudgeGate(judge, config.learned_judge_threshold))
        else:
            gates.append(SelfConsistencyGate(config.consistency_samples))
    return Cascade(
        gates, mode=config.mode, combine_prior=config.combine_prior, threshold=config.combined_threshold
    )
