"""Adapters for the frameworks people reach rerankers from: LangChain and LlamaIndex."""
