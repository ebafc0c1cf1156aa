"""Layer 4, the Gradio shell over `Arena`: it parses input, calls the core and renders.

app (`build_ui(arena) -> gr.Blocks` and the Compare tab), then one module per tab: quality,
summary, history, sweep (Throughput), planner (What fits where). Nothing here computes a metric.
Imports: any lower layer; importing this package builds no Blocks.
"""
