"""The jobs app's pages, one module per concern."""
