"""`gendsl lsp`: a language server for .gen files (pygls), on the same front end as `gendsl check`."""
