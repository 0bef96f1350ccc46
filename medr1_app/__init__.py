"""medr1_app: the clinician-facing Gradio app of medr1 (UI only: pictures, prompts and models come from ``train``)."""
