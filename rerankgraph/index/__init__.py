"""What is built once per corpus and kept on disk: BM25, embeddings, and what later parts derive."""
