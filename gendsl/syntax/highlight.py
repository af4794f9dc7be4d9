"""A Pygments lexer for .gen specs, so that Sphinx, MkDocs and anything else built on Pygments
highlight ```gen blocks. Registered as the Pygments plugin `gen` (pyproject.toml); its scopes
follow the VS Code grammar in editors/vscode/syntaxes/gen.tmLanguage.json.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
DECLARATIONS = ("model", "block", "param", "data", "latent", "tensor", "observe", "loss", "sample", "sampler",
                "diffusion", "flow", "step")
NETWORKS = ("net", "generator", "discriminator", "critic", "energy", "denoiser", "encoder", "decoder",
            "autoregressive")
KEYWORDS = ("train", "evaluate", "minimize", "over", "with", "repeat", "from", "extends", "import", "log", "pack")
TYPES = ("real", "bin", "cat", "int", "float", "bool", "step", "logit")


class GenLexer(RegexLexer):
    """gendsl's .gen specs."""

    name = "gendsl"
    aliases = ["gen", "gendsl"]
    filenames = ["*.gen"]
    url = "https://example.invalid/gendsl"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (rf"\b({'|'.join(DECLARATIONS)})(\s+)({IDENTIFIER})", bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (rf"\b({'|'.join(NETWORKS)})(\s+)({IDENTIFIER})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(TYPES, prefix=r"\b", suffix=r"\b(?=\s*(?:[\[,)={]|->|$))"), Keyword.Type),
            (rf"(\|>)(\s*)({IDENTIFIER})", bygroups(Operator, Whitespace, Name.Builtin)),
            (rf"{IDENTIFIER}(?=\()", Name.Function),
            (r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?", Number),
            (r"<->|->|\|>|[~|+\-*/^=]", Operator),
            (r"[{}()\[\],;:.]", Punctuation),
            (IDENTIFIER, Name),
            (r".", Text),
        ],
    }
