"""`with_structured_output` for a routed model: function calling, JSON schema or JSON mode.

Each method is a binding of the routed model plus LangChain's own parser, so whichever model the
router picks, the caller gets the same parsed object. The `ls_structured_output_format` binding is
what LangChain shows tracers (LangSmith) as the requested schema.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

from gearshift import InvalidRequestError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel, LanguageModelInput

__all__ = ["StructuredMethod", "structured_output"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]


def structured_output(
    model: BaseChatModel,
    schema: dict[str, Any] | type,
    *,
    method: StructuredMethod,
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, Any]:
    """`model` bound to answer in `schema`'s shape, piped into the parser for that shape.

    `function_calling` forces one call of a tool whose arguments are the schema (every tool-calling
    model can); `json_schema` asks for an answer matching the schema (the router keeps to models
    that support JSON output); `json_mode` asks for any JSON object and parses it with the schema.
    """
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    trace = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
    parser: Runnable[Any, Any]
    if method == "function_calling":
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        # One call: the parser reads the first, and OpenAI's strict mode does not hold parallel calls
        # to the schema (ChatOpenAI turns them off too).
        bound = model.bind_tools(
            [tool], tool_choice=name, parallel_tool_calls=False, ls_structured_output_format=trace
        )
        if is_pydantic:
            parser = PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
        else:
            parser = JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
    elif method in ("json_schema", "json_mode"):
        if method == "json_schema":
            json_schema = convert_to_json_schema(schema, strict=strict)
            name = str(json_schema.get("title") or "response")
            spec: dict[str, Any] = {"name": name, "schema": json_schema}
            if strict is not None:
                spec["strict"] = strict
            response_format: dict[str, Any] = {"type": "json_schema", "json_schema": spec}
        else:
            response_format = {"type": "json_object"}
        bound = model.bind(response_format=response_format, ls_structured_output_format=trace)
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if is_pydantic
            else JsonOutputParser()
        )
    else:
        raise InvalidRequestError(
            f"unknown structured output method {method!r}; use function_calling, json_schema or json_mode"
        )
    if not include_raw:
        return bound | parser
    parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
    unparsed = RunnablePassthrough.assign(parsed=lambda _: None)
    return RunnableMap(raw=bound) | parsed.with_fallbacks([unparsed], exception_key="parsing_error")
