"""One LangGraph StateGraph per method; each module exposes its `METHOD` spec, which
the registry collects."""
