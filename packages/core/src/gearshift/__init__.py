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
