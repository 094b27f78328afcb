"""gearshift: route every LLM call to the cheapest model that will do the job.

```python
from gearshift import Router

router = Router.from_config()  # $GEARSHIFT_CONFIG, ./gearshift.toml, or the built-in model ladder
decision = router.decide("Prove that there are infinitely many primes")
answer = await router.acomplete("What is the capital of France?")
```

Budgets live in `gearshift.budgets`, learned routers in `gearshift.learning`, quality gates for
cascades in `gearshift.cascades`, router evaluation (and offline cascade replays) in
`gearshift.evaluation`. The private modules behind this namespace are grouped by concern: `config/`,
`signals/` and `routing/` (the router and what carries out its decisions), with the values
(messages, models, step context, decisions, errors) at the top.

Money is float US dollars everywhere; model prices are dollars per million tokens.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._argument_texts import flat_key as flat_arguments_key
    from ._bridge import iterate_sync, run_sync
    from ._context import CallerHints, StepContext, StepType, ToolRecord, hash_arguments
    from ._decision import Decision
    from ._errors import (
        AllModelsFailed,
        BudgetExceeded,
        ConfigError,
        EmptyAnswer,
        GearshiftError,
        InvalidRequestError,
        LedgerUnavailable,
        NoEligibleModel,
        ProviderError,
        RoutingError,
        UnknownModelError,
    )
    from ._kept_messages import KeptMessages
    from ._messages import (
        REASONING_EFFORTS,
        SAMPLING_SETTINGS,
        ChatRequest,
        ChatResponse,
        ContentPart,
        ImagePart,
        Message,
        Role,
        StreamDone,
        StreamEvent,
        TextDelta,
        TextPart,
        ToolCall,
        ToolCallDelta,
        ToolChoice,
        ToolSpec,
        Usage,
    )
    from ._models import Deployment, ModelPrices, ModelRegistry, ModelSpec, PriceTier
    from ._spelling import did_you_mean
    from ._tool_pairing import pair_tool_results
    from .config._config import GearshiftConfig, LogConfig, ProviderConfig, RoutingConfig, load_config
    from .config._defaults import default_models, default_registry
    from .policies import Policy, RouteInput, RulesPolicy, ScorerConfig, SignalScorer
    from .routing._batch import BatchItem, BatchResult, BatchSummary, summarize_batch
    from .routing._cooldown import CooldownTracker
    from .routing._decision_log import (
        DecisionLog,
        JSONLDecisionLog,
        SQLiteDecisionLog,
        open_decision_log,
        read_records,
    )
    from .routing._deployments import DeploymentHealth
    from .routing._feedback import request_id_of
    from .routing._records import Attempt, Escalation
    from .routing._routed import RoutedResponse, RoutedStream, SyncRoutedStream
    from .routing._router import Router
    from .routing._shadow import ShadowConfig
    from .routing._tool_loop import keep_tool_loop_model
    from .signals._run_context import context_from_messages
    from .signals._signals import TASKS, Signals, extract_signals, is_error_result
    from .signals._tokens import estimate_request_tokens, estimate_tokens

__all__ = [
    "REASONING_EFFORTS",
    "SAMPLING_SETTINGS",
    "TASKS",
    "AllModelsFailed",
    "Attempt",
    "BatchItem",
    "BatchResult",
    "BatchSummary",
    "BudgetExceeded",
    "CallerHints",
    "ChatRequest",
    "ChatResponse",
    "ConfigError",
    "ContentPart",
    "CooldownTracker",
    "Decision",
    "DecisionLog",
    "Deployment",
    "DeploymentHealth",
    "EmptyAnswer",
    "Escalation",
    "GearshiftConfig",
    "GearshiftError",
    "ImagePart",
    "InvalidRequestError",
    "JSONLDecisionLog",
    "KeptMessages",
    "LedgerUnavailable",
    "LogConfig",
    "Message",
    "ModelPrices",
    "ModelRegistry",
    "ModelSpec",
    "NoEligibleModel",
    "Policy",
    "PriceTier",
    "ProviderConfig",
    "ProviderError",
    "Role",
    "RouteInput",
    "RoutedResponse",
    "RoutedStream",
    "Router",
    "RoutingConfig",
    "RoutingError",
    "RulesPolicy",
    "SQLiteDecisionLog",
    "ScorerConfig",
    "ShadowConfig",
    "SignalScorer",
    "Signals",
    "StepContext",
    "StepType",
    "StreamDone",
    "StreamEvent",
    "SyncRoutedStream",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolRecord",
    "ToolSpec",
    "UnknownModelError",
    "Usage",
    "context_from_messages",
    "default_models",
    "default_registry",
    "did_you_mean",
    "estimate_request_tokens",
    "estimate_tokens",
    "extract_signals",
    "flat_arguments_key",
    "hash_arguments",
    "is_error_result",
    "iterate_sync",
    "keep_tool_loop_model",
    "load_config",
    "open_decision_log",
    "pair_tool_results",
    "read_records",
    "request_id_of",
    "run_sync",
    "summarize_batch",
]

# Imported on first use: `import gearshift` (which every `gearshift.*` module import runs first) took
# over a second, in which a Ctrl-C was a KeyboardInterrupt traceback before the CLI could take it.
_PUBLIC: dict[str, tuple[str, str]] = {
    "flat_arguments_key": ("._argument_texts", "flat_key"),
    "iterate_sync": ("._bridge", "iterate_sync"),
    "run_sync": ("._bridge", "run_sync"),
    "CallerHints": ("._context", "CallerHints"),
    "StepContext": ("._context", "StepContext"),
    "StepType": ("._context", "StepType"),
    "ToolRecord": ("._context", "ToolRecord"),
    "hash_arguments": ("._context", "hash_arguments"),
    "Decision": ("._decision", "Decision"),
    "AllModelsFailed": ("._errors", "AllModelsFailed"),
    "BudgetExceeded": ("._errors", "BudgetExceeded"),
    "ConfigError": ("._errors", "ConfigError"),
    "EmptyAnswer": ("._errors", "EmptyAnswer"),
    "GearshiftError": ("._errors", "GearshiftError"),
    "InvalidRequestError": ("._errors", "InvalidRequestError"),
    "LedgerUnavailable": ("._errors", "LedgerUnavailable"),
    "NoEligibleModel": ("._errors", "NoEligibleModel"),
    "ProviderError": ("._errors", "ProviderError"),
    "RoutingError": ("._errors", "RoutingError"),
    "UnknownModelError": ("._errors", "UnknownModelError"),
    "KeptMessages": ("._kept_messages", "KeptMessages"),
    "REASONING_EFFORTS": ("._messages", "REASONING_EFFORTS"),
    "SAMPLING_SETTINGS": ("._messages", "SAMPLING_SETTINGS"),
    "ChatRequest": ("._messages", "ChatRequest"),
    "ChatResponse": ("._messages", "ChatResponse"),
    "ContentPart": ("._messages", "ContentPart"),
    "ImagePart": ("._messages", "ImagePart"),
    "Message": ("._messages", "Message"),
    "Role": ("._messages", "Role"),
    "StreamDone": ("._messages", "StreamDone"),
    "StreamEvent": ("._messages", "StreamEvent"),
    "TextDelta": ("._messages", "TextDelta"),
    "TextPart": ("._messages", "TextPart"),
    "ToolCall": ("._messages", "ToolCall"),
    "ToolCallDelta": ("._messages", "ToolCallDelta"),
    "ToolChoice": ("._messages", "ToolChoice"),
    "ToolSpec": ("._messages", "ToolSpec"),
    "Usage": ("._messages", "Usage"),
    "Deployment": ("._models", "Deployment"),
    "ModelPrices": ("._models", "ModelPrices"),
    "ModelRegistry": ("._models", "ModelRegistry"),
    "ModelSpec": ("._models", "ModelSpec"),
    "PriceTier": ("._models", "PriceTier"),
    "did_you_mean": ("._spelling", "did_you_mean"),
    "pair_tool_results": ("._tool_pairing", "pair_tool_results"),
    "GearshiftConfig": (".config._config", "GearshiftConfig"),
    "LogConfig": (".config._config", "LogConfig"),
    "ProviderConfig": (".config._config", "ProviderConfig"),
    "RoutingConfig": (".config._config", "RoutingConfig"),
    "load_config": (".config._config", "load_config"),
    "default_models": (".config._defaults", "default_models"),
    "default_registry": (".config._defaults", "default_registry"),
    "Policy": (".policies", "Policy"),
    "RouteInput": (".policies", "RouteInput"),
    "RulesPolicy": (".policies", "RulesPolicy"),
    "ScorerConfig": (".policies", "ScorerConfig"),
    "SignalScorer": (".policies", "SignalScorer"),
    "BatchItem": (".routing._batch", "BatchItem"),
    "BatchResult": (".routing._batch", "BatchResult"),
    "BatchSummary": (".routing._batch", "BatchSummary"),
    "summarize_batch": (".routing._batch", "summarize_batch"),
    "CooldownTracker": (".routing._cooldown", "CooldownTracker"),
    "DecisionLog": (".routing._decision_log", "DecisionLog"),
    "JSONLDecisionLog": (".routing._decision_log", "JSONLDecisionLog"),
    "SQLiteDecisionLog": (".routing._decision_log", "SQLiteDecisionLog"),
    "open_decision_log": (".routing._decision_log", "open_decision_log"),
    "read_records": (".routing._decision_log", "read_records"),
    "DeploymentHealth": (".routing._deployments", "DeploymentHealth"),
    "request_id_of": (".routing._feedback", "request_id_of"),
    "Attempt": (".routing._records", "Attempt"),
    "Escalation": (".routing._records", "Escalation"),
    "RoutedResponse": (".routing._routed", "RoutedResponse"),
    "RoutedStream": (".routing._routed", "RoutedStream"),
    "SyncRoutedStream": (".routing._routed", "SyncRoutedStream"),
    "Router": (".routing._router", "Router"),
    "ShadowConfig": (".routing._shadow", "ShadowConfig"),
    "keep_tool_loop_model": (".routing._tool_loop", "keep_tool_loop_model"),
    "context_from_messages": (".signals._run_context", "context_from_messages"),
    "TASKS": (".signals._signals", "TASKS"),
    "Signals": (".signals._signals", "Signals"),
    "extract_signals": (".signals._signals", "extract_signals"),
    "is_error_result": (".signals._signals", "is_error_result"),
    "estimate_request_tokens": (".signals._tokens", "estimate_request_tokens"),
    "estimate_tokens": (".signals._tokens", "estimate_tokens"),
}


def __getattr__(name: str) -> Any:
    """A public name, or a subpackage, imported when it is first asked for."""
    if name in _PUBLIC:
        module, attribute = _PUBLIC[name]
        value = getattr(importlib.import_module(module, __name__), attribute)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as missing:
            if missing.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
