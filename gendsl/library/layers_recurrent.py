"""Recurrent layers over the positions of a sequence real[T, C] (`RNN`, `GRU`, `LSTM`), and `shift`,
which moves a sequence (or a vector, or an image in raster order) one position later.

A recurrent layer's output at position t depends on the inputs at positions up to t: causal, not
strict. In an `autoregressive` block the prediction at t must not see x_t, so the data go through
`shift` first (`x |> shift |> LSTM(256) |> Linear(28)`): what a PyTorch user writes as teacher
forcing on the right-shifted sequence. The order analysis (graph/passes/order.py) reads both from
each Built's `Order`; a bidirectional layer reads later positions too (`Order("any")`).

Registered in LAYERS (library/layers.py imports this module last).
"""

from __future__ import annotations

from typing import Literal

from gendsl.library.entries import Built, Order, not_a_label, require
from gendsl.library.layers import layer
from gendsl.library.signature import Count, Fraction
from gendsl.types import TensorType

# the positions of each rank, as the order analysis counts them: features, rows, raster pixels
POSITIONS = {1: (0,), 2: (0,), 3: (1, 2)}


def sequence(x: TensorType, name: str) -> tuple[int, int]:
    """(positions T, channels C) of a sequence real[T, C] that a recurrent layer reads in order."""
    not_a_label(x, name)
    require(x.rank == 2, f"{name} expects a sequence real[T, C] (T positions of C values), got {x.describe()}",
            as_sequence(x))
    return x.shape


def as_sequence(x: TensorType) -> str:
    """How to read a vector or an image as a sequence."""
    if x.rank == 1:
        return f"reshape first: `reshape({x.shape[0]}, 1)` reads the vector one value at a time"
    if x.rank == 3 and x.shape[0] == 1:
        return f"reshape first: `reshape({x.shape[1]}, {x.shape[2]})` reads the image row by row"
    return "reshape it into positions of values first, e.g. `reshape(T, C)`"


def recurrent_params(gates: int, c_in: int, hidden: int, layers: int, directions: int) -> int:
    """Weights and both biases of torch's nn.RNN / nn.GRU / nn.LSTM (gates: 1, 3, 4)."""
    total, width = 0, c_in
    for _ in range(layers):
        total += directions * gates * hidden * (width + hidden + 2)
        width = directions * hidden
    return total


def recurrent(name: str, gates: int, extra: str = ""):
    """The rule of one recurrent layer: outputs of its last layer at every position."""

    def build(x: TensorType, hidden: Count, layers: Count, bidirectional: bool, dropout: float) -> Built:
        t, c = sequence(x, name)
        require(dropout < 1, f"{name} dropout must be below 1, got {dropout}")
        require(dropout == 0 or layers > 1, f"{name} applies dropout between stacked layers, and has one",
                f"stack layers ({name}({hidden}, layers=2, dropout={dropout})) or put Dropout({dropout}) after it")
        directions = 2 if bidirectional else 1
        # a bidirectional layer reads later positions: no order survives it
        order = Order("any") if bidirectional else Order("causal", (0,))
        options = f"num_layers={layers}, bidirectional={bidirectional}, dropout={dropout}{extra}"
        return Built(out=TensorType(shape=(t, directions * hidden)),
                     params=recurrent_params(gates, c, hidden, layers, directions),
                     code=f"Recurrent(nn.{name}({c}, {hidden}, {options}, batch_first=True))",
                     helpers=("Recurrent",), order=order)
    return build


SHOWN = ("hidden", "layers", "bidirectional")


@layer("LSTM", "long short-term memory over the positions of a sequence real[T, C] (Hochreiter & Schmidhuber "
       "1997): output t (hidden values, twice as many if bidirectional) sees positions up to t; bidirectional "
       "also later ones", shown=SHOWN, aliases=("lstm",))
def lstm(x: TensorType, hidden: Count, layers: Count = 1, bidirectional: bool = False,
         dropout: Fraction = 0.0) -> Built:
    return recurrent("LSTM", 4)(x, hidden, layers, bidirectional, dropout)


@layer("GRU", "gated recurrent unit over the positions of a sequence real[T, C] (Cho et al. 2014): output t "
       "sees positions up to t; bidirectional also later ones", shown=SHOWN, aliases=("gru",))
def gru(x: TensorType, hidden: Count, layers: Count = 1, bidirectional: bool = False,
        dropout: Fraction = 0.0) -> Built:
    return recurrent("GRU", 3)(x, hidden, layers, bidirectional, dropout)


@layer("RNN", "Elman recurrent layer over the positions of a sequence real[T, C]: h_t = act(W x_t + U h_t-1 + b); "
       "output t sees positions up to t; bidirectional also later ones", shown=(*SHOWN, "nonlinearity"),
       aliases=("rnn", "SimpleRNN"))
def rnn(x: TensorType, hidden: Count, layers: Count = 1, bidirectional: bool = False, dropout: Fraction = 0.0,
        nonlinearity: Literal["tanh", "relu"] = "tanh") -> Built:
    return recurrent("RNN", 1, f", nonlinearity={nonlinearity!r}")(x, hidden, layers, bidirectional, dropout)


@layer("shift", "moves every position one later: position t holds what t - 1 held, the first zeros (the rows "
       "of a sequence, the features of a vector, the pixels of an image in raster order); before a recurrent "
       "layer in an autoregressive block, so position t is predicted from positions before t",
       aliases=("shift_right", "ShiftRight"))
def shift(x: TensorType) -> Built:
    not_a_label(x, "shift")
    require(x.rank in POSITIONS, f"shift moves the positions of a vector, a sequence real[T, C] or an image "
            f"real[C, H, W], got {x.describe()}", "a per-sample number has no positions; reshape it first")
    return Built(out=x.as_real(), code=f"Shift({x.rank})", helpers=("Shift",),
                 order=Order("causal", POSITIONS[x.rank], strict=True, rows=1))  # a row's first pixel: the row above
