"""medr1_app: the clinician-facing Gradio app of medr1 (imaging ingestion lives in ``medr1_app.imaging``)."""
