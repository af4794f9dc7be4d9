"""Graph -> diagram (graphviz). Imports neither torch nor anything of the back end."""

from gendsl.diagram.draw import render_file

__all__ = ["render_file"]
