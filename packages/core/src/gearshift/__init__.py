"""gearshift: route every LLM call to the cheapest model that will do the job."""

__all__: list[str] = []
