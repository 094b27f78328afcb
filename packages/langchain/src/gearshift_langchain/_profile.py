"""The LangChain model profile of a routed model: what it can do whichever model the router picks."""

from __future__ import annotations

from langchain_core.language_models import ModelProfile

from gearshift import ModelRegistry

__all__ = ["routed_profile"]


def routed_profile(registry: ModelRegistry) -> ModelProfile:
    """What a routed model can do: what at least one model of the registry can (the router sends
    each request to a model that can serve it), and the largest context window among them."""
    models = list(registry)
    tools = any(m.supports_tools for m in models)
    vision = any(m.supports_vision for m in models)
    profile = ModelProfile(
        name=f"gearshift router ({', '.join(registry.ids)})",
        max_input_tokens=max(m.context_window for m in models),
        text_inputs=True,
        image_inputs=vision,
        image_url_inputs=vision,
        pdf_inputs=False,
        audio_inputs=False,
        video_inputs=False,
        image_tool_message=False,
        pdf_tool_message=False,
        text_outputs=True,
        tool_calling=tools,
        tool_choice=tools,
        tool_call_streaming=tools,
        structured_output=any(m.supports_json for m in models),
        temperature=True,
    )
    caps = [m.max_output_tokens for m in models]
    if all(cap is not None for cap in caps):
        profile["max_output_tokens"] = max(cap for cap in caps if cap is not None)
    return profile
