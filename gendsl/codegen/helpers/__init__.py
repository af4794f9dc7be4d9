"""Run-time helpers of generated models: real, tested PyTorch code, one module per kind.

The code generator copies the source of just the helpers a model uses into the generated file
(by name, with Python's ast module, following the names each helper uses), so a generated file
needs nothing but torch. Helper names are unique across the modules; MODULES fixes the order in
which they appear in a generated file. This package's own import stays torch-free: the code
generator reads the modules as text.
"""

MODULES = ("basic", "autoregressive", "recurrent", "flows", "processes", "diffusion", "hmm")
