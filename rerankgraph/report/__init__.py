"""`rerankgraph report`: runs compared in one self-contained HTML file (work in progress:
the inputs and the statistics are here; the HTML, the plots and the command are not yet)."""
