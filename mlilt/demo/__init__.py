"""The Gradio demo: cross-lingual search of a gallery of pictures by text in any language, or by a picture.

gallery (which pictures) -> index (their embeddings, searchable) -> search (one model, one language) ->
routing (which language a query is in) -> uploads (what a dropped file may be) -> ui (the app and serving).
"""
