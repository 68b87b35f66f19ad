"""The knowledge base as a whole: ingesting files into the store, listing, deleting, rebuilding, exporting, importing.
"""
