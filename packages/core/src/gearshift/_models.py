"""Model specs and the registry the router chooses from.

A `ModelSpec` names one model gearshift may route to: its id (unique in the registry), the provider
configuration that serves it, the provider's own model name, its tier (capability rank: higher is
stronger), its prices, context window and capabilities.

Money is float US dollars everywhere in gearshift; prices are dollars per million tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ._errors import ConfigError, UnknownModelError
from ._messages import Usage

__all__ = ["Deployment", "ModelPrices", "ModelRegistry", "ModelSpec", "PriceTier"]


class PriceTier(BaseModel):
    """Long-context prices: what every token of a call costs once its input passes `above` tokens.

    As genai-prices and the vendors bill them, crossing the threshold moves the whole call (input,
    cached input and output) to these rates, not just the tokens above it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    above: int = Field(gt=0, description="Input tokens (cached ones included) above which these apply.")
    input: float = Field(ge=0, allow_inf_nan=False, description="Dollars per million input tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="Dollars per million output tokens.")
    cache_read: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Cached input (default: this tier's input)."
    )
    cache_write: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="Cache writes (default: this tier's input)."
    )
    cache_write_1h: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Writes to the 1-hour prompt cache (default: this tier's cache_write).",
    )


class ModelPrices(BaseModel):
    """List prices in US dollars per million tokens.

    Cached input is billed at `cache_read`, input written to the prompt cache at `cache_write`
    (Anthropic bills writes at 1.25x input, 2x for its 1-hour cache at `cache_write_1h`, and the
    router gives those rates to prices of a model an Anthropic provider serves that leave them out;
    OpenAI caches for free), the rest of the input at `input`.
    `long_context` lists the tiers whose higher prices apply to a call whose input is longer than
    their threshold.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False, description="Dollars per million input tokens.")
    output: float = Field(ge=0, allow_inf_nan=False, description="Dollars per million output tokens.")
    cache_read: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Dollars per million cached input tokens (default: input).",
    )
    cache_write: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Dollars per million input tokens written to the prompt cache (default: input; "
        "1.25x input for a model an Anthropic provider serves, as the router gives it).",
    )
    cache_write_1h: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Dollars per million input tokens written to Anthropic's 1-hour prompt cache "
        "(default: cache_write).",
    )
    long_context: tuple[PriceTier, ...] = Field(
        default=(), description="Higher prices for calls whose input passes a threshold, ascending."
    )

    @field_validator("long_context")
    @classmethod
    def _check_tiers(cls, value: tuple[PriceTier, ...]) -> tuple[PriceTier, ...]:
        thresholds = [tier.above for tier in value]
        if thresholds != sorted(set(thresholds)):
            raise ValueError(
                f"tiers must have distinct `above` thresholds in ascending order, got {thresholds}"
            )
        return value

    def with_cache_write_rates(self, five_minutes: float, one_hour: float) -> ModelPrices:
        """These prices with the cache-write ones they leave out, in this price list and each of its
        tiers, set to `five_minutes` and `one_hour` times that list's input price (Anthropic bills
        writes at 1.25x and 2x); the given ones are kept."""

        def filled(rates: ModelPrices | PriceTier) -> dict[str, float]:
            return {
                "cache_write": rates.input * five_minutes if rates.cache_write is None else rates.cache_write,
                "cache_write_1h": rates.input * one_hour
                if rates.cache_write_1h is None
                else rates.cache_write_1h,
            }

        tiers = tuple(tier.model_copy(update=filled(tier)) for tier in self.long_context)
        return self.model_copy(update={**filled(self), "long_context": tiers})

    def cost(self, usage: Usage, *, tier_input: int | None = None) -> float:
        """The cost in dollars of a call with this usage: its input size picks the price tier, or
        `tier_input` when given (a reservation prices an estimate at the tier its real count may
        reach)."""
        return self._cost(
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.output_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens,
            tier_input=tier_input,
        )

    def rates(self, input_tokens: int) -> ModelPrices | PriceTier:
        """The prices that apply to a call with this many input tokens: the base or a long-context tier."""
        rates: ModelPrices | PriceTier = self
        for tier in self.long_context:
            if input_tokens > tier.above:
                rates = tier
        return rates

    def _cost(
        self,
        input_tokens: int,
        cache_read_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        *,
        tier_input: int | None = None,
    ) -> float:
        # Shared by `cost` and `ModelSpec.estimate_cost`, which is on every routing decision and need
        # not build a `Usage` for it.
        rates: ModelPrices | PriceTier = self
        if self.long_context:
            rates = self.rates(input_tokens if tier_input is None else max(input_tokens, tier_input))
        cache_read = rates.input if rates.cache_read is None else rates.cache_read
        cache_write = rates.input if rates.cache_write is None else rates.cache_write
        cache_write_1h = cache_write if rates.cache_write_1h is None else rates.cache_write_1h
        one_hour = min(cache_write_1h_tokens, cache_write_tokens)
        uncached = max(input_tokens - cache_read_tokens - cache_write_tokens, 0)
        return (
            uncached * rates.input
            + cache_read_tokens * cache_read
            + (cache_write_tokens - one_hour) * cache_write
            + one_hour * cache_write_1h
            + output_tokens * rates.output
        ) / 1_000_000


class Deployment(BaseModel):
    """One more place that serves a model: another provider configuration (base URL, key, region)
    and, when it names the model differently, its own model name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1, description="Name of the provider configuration that serves it.")
    model: str | None = Field(
        default=None,
        min_length=1,
        description="The model name this deployment expects (default: the model's).",
    )


class ModelSpec(BaseModel):
    """One model gearshift may route to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Unique id in the registry, used in decisions and logs.")
    provider: str = Field(
        min_length=1, description="Name of the provider configuration that serves it (openai, ...)."
    )
    model: str = Field(min_length=1, description="The model name the provider's API expects.")
    tier: int = Field(ge=0, description="Capability rank: higher is stronger.")
    prices: ModelPrices = Field(description="List prices; filled from genai-prices when not configured.")
    context_window: int = Field(default=128_000, gt=0, description="Input plus output tokens it accepts.")
    max_output_tokens: int | None = Field(default=None, gt=0, description="Cap on output tokens.")
    supports_tools: bool = Field(default=True, description="Can call tools.")
    supports_vision: bool = Field(default=False, description="Accepts images.")
    supports_json: bool = Field(default=True, description="Can be asked for JSON matching a schema.")
    reasoning: bool = Field(
        default=False,
        description="An OpenAI reasoning model (gpt-5, o-series): it is sent a request's `reasoning_effort`, "
        "and never `temperature`, `top_p` or the penalties, which such models refuse (the decision's "
        "reasons say what was left out); a request with stop sequences, which they refuse too, goes to "
        "another model. Other models are never sent `reasoning_effort`.",
    )
    deployments: tuple[Deployment, ...] = Field(
        default=(),
        description="More deployments of this model besides `provider`; calls go to the healthiest "
        "and fastest (see `gearshift.routing._deployments`).",
    )

    @field_validator("deployments")
    @classmethod
    def _check_deployments(
        cls, value: tuple[Deployment, ...], info: ValidationInfo
    ) -> tuple[Deployment, ...]:
        # One provider configuration is one place (health is kept per model and provider): listed
        # twice, it would be one deployment tried twice in a call, its failures counted twice.
        seen = {info.data["provider"]: "its own provider"} if "provider" in info.data else {}
        for number, deployment in enumerate(value):
            if deployment.provider in seen:
                raise ValueError(
                    f"deployments[{number}]: provider '{deployment.provider}' already serves model "
                    f"'{info.data.get('id')}' ({seen[deployment.provider]}); a deployment is a provider "
                    "configuration of its own: declare another provider, even with the same base_url "
                    "(another key, another model name)"
                )
            seen[deployment.provider] = f"deployments[{number}]"
        return value

    def served_by(self) -> tuple[str, ...]:
        """The provider configurations that serve this model: `provider`, then each deployment's."""
        return (self.provider, *(d.provider for d in self.deployments))

    def cost(self, usage: Usage, *, tier_input: int | None = None) -> float:
        """The cost in dollars of a call to this model with this usage (`tier_input`: see
        `ModelPrices.cost`)."""
        return self.prices.cost(usage, tier_input=tier_input)

    def estimate_cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """The cost in dollars of a call of this size, `cached_tokens` of its input read from the cache."""
        return self.prices._cost(input_tokens, cached_tokens, output_tokens)


class ModelRegistry:
    """The models the router may choose from, by id, ordered from weakest and cheapest up."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        ordered = sorted(models, key=lambda m: (m.tier, m.prices.input + m.prices.output, m.id))
        by_id: dict[str, ModelSpec] = {}
        for spec in ordered:
            if spec.id in by_id:
                raise ConfigError(f"model id '{spec.id}' is defined twice", key="models")
            by_id[spec.id] = spec
        if not by_id:
            raise ConfigError("the registry needs at least one model", key="models")
        self._by_id = by_id
        # Built once: eligibility returns this very tuple when every model fits, so that a policy can
        # recognise the candidates it has already worked on by identity.
        self._models = tuple(by_id.values())

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping[str, Any]], *, source: str = "<python>") -> ModelRegistry:
        """Build a registry from plain dicts; errors name the source and the bad key."""
        specs = []
        for index, row in enumerate(rows):
            try:
                specs.append(ModelSpec.model_validate(dict(row)))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ConfigError(err["msg"], source=source, key=f"models[{index}].{loc}") from None
        return cls(specs)

    def __getitem__(self, model_id: str) -> ModelSpec:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise UnknownModelError(model_id, self._by_id) from None

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"ModelRegistry({', '.join(self._by_id)})"

    @property
    def ids(self) -> tuple[str, ...]:
        """Model ids, weakest and cheapest first."""
        return tuple(self._by_id)

    @property
    def tiers(self) -> tuple[int, ...]:
        """The distinct tiers, ascending."""
        return tuple(sorted({m.tier for m in self._by_id.values()}))

    def in_tier(self, tier: int) -> tuple[ModelSpec, ...]:
        """Models of one tier, cheapest first."""
        return tuple(m for m in self._by_id.values() if m.tier == tier)

    @property
    def strongest(self) -> ModelSpec:
        """The cheapest model of the top tier."""
        return self.in_tier(self.tiers[-1])[0]

    @property
    def cheapest(self) -> ModelSpec:
        """The cheapest model of the bottom tier."""
        return next(iter(self._by_id.values()))
