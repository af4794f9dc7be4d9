"""The checker's passes, each a pure function Graph -> (annotated Graph, diagnostics), run in
order by gendsl.graph.check: names, params, types, roles, gradients, size."""
