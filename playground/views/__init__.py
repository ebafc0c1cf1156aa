"""Layer 1, pure: what the shells and the report show. Plotly figures (charts, sweep_charts) and the
text of engine cards, answer figures and table rows (cards).

Imports: `playground.measure` and plotly; no gradio, httpx, vllm, pynvml or psutil. Both the Gradio
UI and the HTML report (`playground.store.report`) draw with these, which is why they are not in ui/.
"""
