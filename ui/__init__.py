"""The page's parts that live outside app.py."""
