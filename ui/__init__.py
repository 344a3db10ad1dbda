"""The studio page's parts beside app.py: its words, its options panel and presets, and its face preview."""
