"""The Charter language server (``charter lsp``; needs the ``[lsp]`` extra: pygls, lsprotocol).

:mod:`charter.lsp.analysis` answers editor questions from one run of the real
compiler pipeline; :mod:`charter.lsp.server` speaks the Language Server
Protocol over stdio with pygls.
"""
