"""First stages behind one protocol: run file, BM25, dense, hybrid."""
