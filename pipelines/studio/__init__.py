"""The SpeakEmbed studio (`spk ui`): the pages of the Streamlit app in pipelines/ui.py, one module
per page (clone, compare, verify, identify & enrol, diarise, embeddings), each a `render()` that
calls the same pipeline functions as the CLI; `session` (temporary folder, uploads, one-line
errors, progress) and `resources` (models loaded once per process) are what they share."""
