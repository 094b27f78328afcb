"""LangChain's standard unit suite for `RoutedChatModel`, built from a gearshift.toml (no model is called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from gearshift_langchain import RoutedChatModel

CONFIG = str(Path(__file__).with_name("routed.toml"))


class TestRoutedChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[RoutedChatModel]:
        return RoutedChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"config": CONFIG, "agent_id": "unit"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        # gearshift's own variable: the model is built from the config it names.
        return {"GEARSHIFT_CONFIG": CONFIG}, {}, {"config": CONFIG}

    @property
    def model_override_value(self) -> str:
        return "large"
